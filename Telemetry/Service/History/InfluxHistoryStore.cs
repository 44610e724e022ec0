using System.Globalization;
using System.Text.Json;
using IotRealtime.Telemetry.Influx;

namespace IotRealtime.Telemetry.History;

/// <summary>
/// History from InfluxDB 1.x, for a service whose only sink is InfluxDB: one InfluxQL query per request,
/// <c>SELECT min, max, mean, last, count ... GROUP BY time(step) fill(none)</c> over the sink's <c>telemetry</c>
/// measurement. InfluxQL buckets start at multiples of the interval since the epoch, as the PostgreSQL store's do,
/// so both answer the same request with the same buckets (the history store contract tests check that).
/// </summary>
public sealed class InfluxHistoryStore : IHistoryStore, IDisposable
{
    readonly InfluxClient _client;
    readonly InfluxSinkOptions _options;

    public InfluxHistoryStore(InfluxSinkOptions options, InfluxClient client)
    {
        if (options.Version != 1) throw new ArgumentException("The InfluxDB history store speaks InfluxQL, i.e. InfluxDB 1.x.", nameof(options));
        _options = options;
        _client = client;
    }

    string Measurement => InfluxQl.Identifier(_options.Measurement);

    public async Task<IReadOnlyList<HistoryBucket>> QueryAsync(HistoryQuery query, CancellationToken ct)
    {
        var sql = string.Create(CultureInfo.InvariantCulture,
            $"SELECT min(\"value\"), max(\"value\"), mean(\"value\"), last(\"value\"), count(\"value\") FROM {Measurement} "
            + $"WHERE \"device\" = {InfluxQl.Literal(query.Device)} AND \"metric\" = {InfluxQl.Literal(query.Metric)} "
            + $"AND time >= {LineProtocol.ToUnixNanoseconds(query.From)} AND time < {LineProtocol.ToUnixNanoseconds(query.To)} "
            + $"GROUP BY time({query.StepSeconds}s) fill(none)");
        using var answer = await _client.QueryV1Async(sql, _options.Database, ct).ConfigureAwait(false);
        var buckets = new List<HistoryBucket>();
        foreach (var row in InfluxQl.Rows(answer))
        {
            buckets.Add(new HistoryBucket(DateTimeOffset.Parse(row["time"].GetString()!, CultureInfo.InvariantCulture),
                row["min"].GetDouble(), row["max"].GetDouble(), row["mean"].GetDouble(), row["last"].GetDouble(), row["count"].GetInt64()));
        }
        return buckets;
    }

    public async Task<IReadOnlyList<string>> DevicesAsync(string? after, int limit, CancellationToken ct)
    {
        var values = await TagValuesAsync($"SHOW TAG VALUES FROM {Measurement} WITH KEY = \"device\"", ct).ConfigureAwait(false);
        return values.Where(v => after is null || string.CompareOrdinal(v, after) > 0).Take(limit).ToList();
    }

    public Task<IReadOnlyList<string>> MetricsAsync(string device, CancellationToken ct) =>
        TagValuesAsync($"SHOW TAG VALUES FROM {Measurement} WITH KEY = \"metric\" WHERE \"device\" = {InfluxQl.Literal(device)}", ct);

    async Task<IReadOnlyList<string>> TagValuesAsync(string query, CancellationToken ct)
    {
        using var answer = await _client.QueryV1Async(query, _options.Database, ct).ConfigureAwait(false);
        var values = InfluxQl.Rows(answer).Select(r => r["value"].GetString()!).ToList();
        values.Sort(StringComparer.Ordinal);
        return values;
    }

    public void Dispose() => _client.Dispose();
}
