using System.Globalization;
using IotRealtime.Telemetry.Influx;
using IotRealtime.Telemetry.Sinks;
using IotRealtime.Telemetry.Tests.Sinks;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Telemetry.Tests.Influx;

/// <summary>The shared sink contract against the InfluxDB sink and a real InfluxDB 1.6; a database per test.</summary>
public sealed class InfluxSinkContractTests(InfluxFixture influx) : TelemetrySinkContract, IClassFixture<InfluxFixture>
{
    readonly string _database = influx.NewDatabase();

    protected override Task<ITelemetrySink> CreateSinkAsync(string consumerGroup) =>
        Task.FromResult<ITelemetrySink>(new InfluxSink(influx.Options(_database), consumerGroup, TimeProvider.System, NullLogger<InfluxSink>.Instance));

    protected override async Task<IReadOnlyList<Reading>> ReadReadingsAsync(string device)
    {
        var rows = await influx.Server.SelectAsync(_database, $"SELECT \"value\" FROM \"telemetry\" WHERE \"device\" = {InfluxQl.Literal(device)} GROUP BY \"metric\"");
        return rows.Select(r => new Reading(DateTimeOffset.Parse(r["time"].GetString()!, CultureInfo.InvariantCulture), device, r["metric"].GetString()!, r["value"].GetDouble())).ToList();
    }

    protected override async Task<IReadOnlyList<ParkedPayload>> ReadParkedAsync()
    {
        var rows = await influx.Server.SelectAsync(_database, "SELECT * FROM \"telemetry_parked\" WHERE \"kind\" = 'payload'");
        return rows.Select(r =>
        {
            // The point's time is the Kafka timestamp (milliseconds) with the offset in the sub-millisecond digits.
            var time = DateTimeOffset.Parse(r["time"].GetString()!, CultureInfo.InvariantCulture);
            var kafkaTime = new DateTimeOffset(time.UtcTicks - time.UtcTicks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero);
            return new ParkedPayload(r["topic"].GetString()!, int.Parse(r["partition"].GetString()!, CultureInfo.InvariantCulture), r["offset"].GetInt64(), kafkaTime,
                r.TryGetValue("device", out var d) && d.ValueKind == System.Text.Json.JsonValueKind.String ? d.GetString() : null,
                r.TryGetValue("mqtt_topic", out var m) && m.ValueKind == System.Text.Json.JsonValueKind.String ? m.GetString() : null,
                Convert.FromBase64String(r["payload_base64"].GetString()!), r["reason"].GetString()!);
        }).ToList();
    }
}
