namespace IotRealtime.Telemetry.Influx;

/// <summary>
/// Where and how the InfluxDB sink writes. The connection keys come from configuration section <c>Telemetry:Influx</c>
/// (<see cref="From"/>); the rest are tuning with defaults that suit a server on the same network.
/// </summary>
public sealed class InfluxSinkOptions
{
    public const string Section = "Telemetry:Influx";

    /// <summary>The sink options for the configured connection (Url, Version, Database, Org, Bucket, Token).</summary>
    public static InfluxSinkOptions From(Configuration.InfluxOptions configured) => new()
    {
        Url = configured.Url,
        Version = configured.Version,
        Database = configured.Database,
        Org = configured.Org,
        Bucket = configured.Bucket,
        Token = configured.Token,
    };

    /// <summary>Base URL of the InfluxDB HTTP API, e.g. http://localhost:8086.</summary>
    public string Url { get; set; } = string.Empty;

    /// <summary>1: /write and InfluxQL /query with Database; 2: /api/v2/write and Flux /api/v2/query with Org, Bucket, Token.</summary>
    public int Version { get; set; } = 1;

    /// <summary>v1 database; created at start (CREATE DATABASE is idempotent) when <see cref="CreateDatabase"/> is on.</summary>
    public string Database { get; set; } = "telemetry";

    /// <summary>v1 retention policy; empty means the database's default.</summary>
    public string RetentionPolicy { get; set; } = string.Empty;

    public bool CreateDatabase { get; set; } = true;

    /// <summary>v1 credentials when the server has auth-enabled; empty means none.</summary>
    public string Username { get; set; } = string.Empty;

    public string Password { get; set; } = string.Empty;

    /// <summary>v2 organisation (name or id).</summary>
    public string Org { get; set; } = string.Empty;

    /// <summary>v2 bucket; must exist (the sink does not create buckets, which need retention decisions).</summary>
    public string Bucket { get; set; } = string.Empty;

    /// <summary>v2 API token (Authorization: Token ...); v1 also sends it when set (1.8+ accepts user:password tokens).</summary>
    public string Token { get; set; } = string.Empty;

    /// <summary>The measurement readings go to; one point per reading with tags device and metric and field value.</summary>
    public string Measurement { get; set; } = "telemetry";

    /// <summary>Where the sink records its Kafka positions, written after the points they cover.</summary>
    public string OffsetsMeasurement { get; set; } = "telemetry_offsets";

    /// <summary>Where payloads the decoder parked, readings line protocol cannot carry, and lines InfluxDB refused go.</summary>
    public string ParkedMeasurement { get; set; } = "telemetry_parked";

    /// <summary>Points per write request: InfluxDB's guidance is 5,000–10,000 for the best throughput.</summary>
    public int MaxPointsPerRequest { get; set; } = 5_000;

    /// <summary>Write requests a batch sends at once.</summary>
    public int MaxConcurrentRequests { get; set; } = 2;

    /// <summary>Compress request bodies (Content-Encoding: gzip): worth it for a remote server, wasted CPU on loopback.</summary>
    public bool Gzip { get; set; }

    /// <summary>Per-request timeout; a timed-out request is retried like a 5xx.</summary>
    public int RequestTimeoutMs { get; set; } = 10_000;

    /// <summary>How long one write keeps retrying 5xx answers, timeouts and refused connections before it fails.</summary>
    public int RetryForMs { get; set; } = 60_000;

    /// <summary>First backoff between retries; doubles per attempt up to <see cref="MaxBackoffMs"/>.</summary>
    public int InitialBackoffMs { get; set; } = 100;

    public int MaxBackoffMs { get; set; } = 5_000;

    /// <summary>Every problem, each naming its key (prefix = the section the options were bound from).</summary>
    public IEnumerable<string> Validate(string prefix = Section)
    {
        if (string.IsNullOrWhiteSpace(Url))
        {
            yield return $"{prefix}:Url must be set when the influxdb sink is on (e.g. http://localhost:8086).";
        }
        else if (!Uri.TryCreate(Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            yield return $"{prefix}:Url '{Url}' is not an absolute http:// or https:// URL.";
        }
        if (Version is not (1 or 2)) yield return $"{prefix}:Version must be 1 or 2, not {Version}.";
        if (Version == 1 && string.IsNullOrWhiteSpace(Database)) yield return $"{prefix}:Database must be set for InfluxDB 1.x.";
        if (Version == 2)
        {
            if (string.IsNullOrWhiteSpace(Org)) yield return $"{prefix}:Org must be set for InfluxDB 2.x.";
            if (string.IsNullOrWhiteSpace(Bucket)) yield return $"{prefix}:Bucket must be set for InfluxDB 2.x.";
            if (string.IsNullOrWhiteSpace(Token)) yield return $"{prefix}:Token must be set for InfluxDB 2.x.";
        }
        if (Username.Length > 0 != Password.Length > 0) yield return $"{prefix}:Username and {prefix}:Password must be set together.";
        foreach (var (key, name) in new[] { ("Measurement", Measurement), ("OffsetsMeasurement", OffsetsMeasurement), ("ParkedMeasurement", ParkedMeasurement) })
        {
            if (LineProtocol.CheckMeasurement(name) is { } problem) yield return $"{prefix}:{key} '{name}' {problem}.";
        }
        if (Measurement == OffsetsMeasurement || Measurement == ParkedMeasurement || OffsetsMeasurement == ParkedMeasurement)
        {
            yield return $"{prefix}:Measurement, OffsetsMeasurement and ParkedMeasurement must differ.";
        }
        if (MaxPointsPerRequest is < 1 or > 100_000) yield return $"{prefix}:MaxPointsPerRequest must be 1..100000, not {MaxPointsPerRequest}.";
        if (MaxConcurrentRequests is < 1 or > 16) yield return $"{prefix}:MaxConcurrentRequests must be 1..16, not {MaxConcurrentRequests}.";
        if (RequestTimeoutMs < 100) yield return $"{prefix}:RequestTimeoutMs must be at least 100, not {RequestTimeoutMs}.";
        if (RetryForMs < 0) yield return $"{prefix}:RetryForMs must not be negative, not {RetryForMs}.";
        if (InitialBackoffMs < 1) yield return $"{prefix}:InitialBackoffMs must be at least 1, not {InitialBackoffMs}.";
        if (MaxBackoffMs < InitialBackoffMs) yield return $"{prefix}:MaxBackoffMs must be at least InitialBackoffMs ({InitialBackoffMs}), not {MaxBackoffMs}.";
    }
}
