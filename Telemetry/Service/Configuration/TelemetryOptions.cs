namespace IotRealtime.Telemetry.Configuration;

/// <summary>Where a partition starts when no sink has stored an offset for it yet.</summary>
public enum StartPosition
{
    /// <summary>The oldest record Kafka still holds: telemetry already in the log gets stored.</summary>
    Earliest,
    /// <summary>Only records produced from now on.</summary>
    Latest,
}

/// <summary>Section <c>Telemetry:Kafka</c>: the consumer group that feeds the sinks.</summary>
public sealed class TelemetryKafkaOptions
{
    /// <summary>host:port,... of the Kafka brokers.</summary>
    public string BootstrapServers { get; set; } = string.Empty;

    /// <summary>Kafka topics to consume (what the broker's Kafka rules write to).</summary>
    public List<string> Topics { get; set; } = [];

    /// <summary>The consumer group; also the key under which the sinks store their offsets.</summary>
    public string GroupId { get; set; } = "iotrealtime-telemetry";

    public StartPosition StartFrom { get; set; } = StartPosition.Earliest;

    /// <summary>session.timeout.ms: how long a crashed member holds its partitions before the group moves them.</summary>
    public int SessionTimeoutMs { get; set; } = 45_000;

    /// <summary>queued.max.messages.kbytes: how much librdkafka prefetches per partition ahead of the writer.</summary>
    public int PrefetchKbytes { get; set; } = 65_536;
}

/// <summary>Section <c>Telemetry:Postgres</c>.</summary>
public sealed class PostgresOptions
{
    /// <summary>An Npgsql connection string (Host=...;Database=...;Username=...).</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>Daily reading partitions older than this are dropped.</summary>
    public int RetentionDays { get; set; } = 30;

    /// <summary>Daily partitions created ahead of today, so the first write of a day never waits on DDL.</summary>
    public int PartitionsAhead { get; set; } = 2;

    /// <summary>How often partitions are created ahead and expired ones dropped.</summary>
    public int MaintenanceIntervalMinutes { get; set; } = 60;
}

/// <summary>Section <c>Telemetry:Influx</c>: InfluxDB 1.x (Database) or 2.x (Org, Bucket, Token).</summary>
public sealed class InfluxOptions
{
    public string Url { get; set; } = string.Empty;

    public int Version { get; set; } = 1;

    public string Database { get; set; } = string.Empty;

    public string Org { get; set; } = string.Empty;

    public string Bucket { get; set; } = string.Empty;

    public string Token { get; set; } = string.Empty;
}

/// <summary>Section <c>Telemetry:Http</c>: /healthz, /metrics and the history API.</summary>
public sealed class TelemetryHttpOptions
{
    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; set; } = 8081;

    public string BindAddress { get; set; } = "0.0.0.0";
}

/// <summary>Section <c>Telemetry:Faults</c>: for tests only — deliberate crashes that prove exactly-once storage.</summary>
public sealed class TelemetryFaultOptions
{
    /// <summary>When N &gt; 0 the process kills itself (SIGKILL) right after the N-th batch is stored, before the Kafka commit.</summary>
    public int ExitAfterDbCommitOnBatch { get; set; }
}
