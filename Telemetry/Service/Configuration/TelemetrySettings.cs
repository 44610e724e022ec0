using System.Net;
using IotRealtime.Hosting.Configuration;
using IotRealtime.Hosting.Kafka;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace IotRealtime.Telemetry.Configuration;

/// <summary>
/// Section <c>Telemetry</c>, bound and validated in one pass that collects every problem, each naming its key, so a bad
/// configuration is reported once, in full. Misspelt keys are errors, never silently ignored.
/// </summary>
public sealed class TelemetrySettings
{
    public const string Section = "Telemetry";
    public const string PostgresSink = "postgres";
    public const string InfluxSink = "influxdb";

    static readonly string[] KnownSinks = [PostgresSink, InfluxSink];

    public TelemetryKafkaOptions Kafka { get; set; } = new();

    /// <summary>Where readings go: any of <c>postgres</c>, <c>influxdb</c>.</summary>
    public List<string> Sinks { get; set; } = [PostgresSink];

    public PostgresOptions Postgres { get; set; } = new();

    public InfluxOptions Influx { get; set; } = new();

    /// <summary>A batch is written when it holds this many readings ...</summary>
    public int BatchMaxReadings { get; set; } = 50_000;

    /// <summary>... or when its first record is this old.</summary>
    public int BatchMaxDelayMs { get; set; } = 200;

    /// <summary>Sealed batches waiting for each sink; when full, consumption pauses (back-pressure).</summary>
    public int MaxPendingBatches { get; set; } = 2;

    /// <summary>The longest wait between retries of a failed sink write (backoff doubles from 100 ms up to this).</summary>
    public int RetryMaxDelayMs { get; set; } = 5_000;

    public TelemetryHttpOptions Http { get; set; } = new();

    public TelemetryFaultOptions Faults { get; set; } = new();

    public bool HasSink(string name) => Sinks.Contains(name, StringComparer.OrdinalIgnoreCase);

    /// <exception cref="TelemetryConfigurationException">Listing every problem, each naming its key.</exception>
    public static TelemetrySettings Load(IConfiguration configuration)
    {
        var errors = new List<string>();
        var settings = new TelemetrySettings();
        StrictBinder.Bind(settings, configuration.GetSection(Section), Section, errors);
        errors.AddRange(settings.Validate());
        if (errors.Count > 0) throw new TelemetryConfigurationException(errors);
        return settings;
    }

    IEnumerable<string> Validate()
    {
        const string kafka = Section + ":Kafka";
        if (string.IsNullOrWhiteSpace(Kafka.BootstrapServers)) yield return $"{kafka}:BootstrapServers must be set (host:port,...).";
        if (Kafka.Topics.Count == 0) yield return $"{kafka}:Topics must name at least one Kafka topic (a list: {kafka}:Topics:0=mqtt, or comma-separated).";
        foreach (var topic in Kafka.Topics)
        {
            if (!KafkaTopicName.IsValid(topic)) yield return $"{kafka}:Topics: '{topic}' is not a valid Kafka topic ({KafkaTopicName.Rule}).";
        }
        if (string.IsNullOrWhiteSpace(Kafka.GroupId)) yield return $"{kafka}:GroupId must not be empty.";
        if (Kafka.SessionTimeoutMs < 1) yield return $"{kafka}:SessionTimeoutMs must be at least 1 (got {Kafka.SessionTimeoutMs}).";
        if (Kafka.PrefetchKbytes < 1) yield return $"{kafka}:PrefetchKbytes must be at least 1 (got {Kafka.PrefetchKbytes}).";

        if (Sinks.Count == 0) yield return $"{Section}:Sinks must name at least one of {string.Join(", ", KnownSinks)}.";
        foreach (var sink in Sinks)
        {
            if (!KnownSinks.Contains(sink, StringComparer.OrdinalIgnoreCase)) yield return $"{Section}:Sinks: '{sink}' is not a sink; expected any of {string.Join(", ", KnownSinks)}.";
        }
        if (Sinks.Distinct(StringComparer.OrdinalIgnoreCase).Count() != Sinks.Count) yield return $"{Section}:Sinks names a sink twice.";

        if (HasSink(PostgresSink))
        {
            const string pg = Section + ":Postgres";
            if (string.IsNullOrWhiteSpace(Postgres.ConnectionString)) yield return $"{pg}:ConnectionString must be set when {Section}:Sinks includes postgres.";
            else if (ConnectionStringError(Postgres.ConnectionString) is { } error) yield return $"{pg}:ConnectionString is not a valid Npgsql connection string: {error}";
            if (Postgres.RetentionDays < 1) yield return $"{pg}:RetentionDays must be at least 1 (got {Postgres.RetentionDays}).";
            if (Postgres.PartitionsAhead is < 0 or > 366) yield return $"{pg}:PartitionsAhead must be between 0 and 366 (got {Postgres.PartitionsAhead}).";
            if (Postgres.MaintenanceIntervalMinutes < 1) yield return $"{pg}:MaintenanceIntervalMinutes must be at least 1 (got {Postgres.MaintenanceIntervalMinutes}).";
        }

        if (HasSink(InfluxSink))
        {
            const string influx = Section + ":Influx";
            if (!Uri.TryCreate(Influx.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                yield return $"{influx}:Url: '{Influx.Url}' is not an absolute http(s) URL (e.g. http://localhost:8086).";
            }
            if (Influx.Version is not (1 or 2)) yield return $"{influx}:Version must be 1 or 2 (got {Influx.Version}).";
            if (Influx.Version == 1 && string.IsNullOrWhiteSpace(Influx.Database)) yield return $"{influx}:Database must be set for InfluxDB 1.x.";
            if (Influx.Version == 2)
            {
                if (string.IsNullOrWhiteSpace(Influx.Org)) yield return $"{influx}:Org must be set for InfluxDB 2.x.";
                if (string.IsNullOrWhiteSpace(Influx.Bucket)) yield return $"{influx}:Bucket must be set for InfluxDB 2.x.";
                if (string.IsNullOrWhiteSpace(Influx.Token)) yield return $"{influx}:Token must be set for InfluxDB 2.x.";
            }
        }

        if (BatchMaxReadings < 1) yield return $"{Section}:BatchMaxReadings must be at least 1 (got {BatchMaxReadings}).";
        if (BatchMaxDelayMs < 1) yield return $"{Section}:BatchMaxDelayMs must be at least 1 (got {BatchMaxDelayMs}).";
        if (MaxPendingBatches < 1) yield return $"{Section}:MaxPendingBatches must be at least 1 (got {MaxPendingBatches}).";
        if (RetryMaxDelayMs < 1) yield return $"{Section}:RetryMaxDelayMs must be at least 1 (got {RetryMaxDelayMs}).";
        if (Http.Port is < 0 or > 65535) yield return $"{Section}:Http:Port must be between 0 and 65535 (got {Http.Port}).";
        if (!IPAddress.TryParse(Http.BindAddress, out _)) yield return $"{Section}:Http:BindAddress: '{Http.BindAddress}' is not an IP address.";
        if (Faults.ExitAfterDbCommitOnBatch < 0) yield return $"{Section}:Faults:ExitAfterDbCommitOnBatch must not be negative (got {Faults.ExitAfterDbCommitOnBatch}).";
    }

    static string? ConnectionStringError(string connectionString)
    {
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
            return null;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            return e.Message;
        }
    }
}
