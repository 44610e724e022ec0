using IotRealtime.Hosting.Configuration;
using IotRealtime.Hosting.Kafka;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Bridges.Configuration;

/// <summary>What a stream does when its bounded send queue is full.</summary>
public enum OverflowPolicy
{
    /// <summary>Close the stream; the client reconnects and resumes from its last position (nothing is skipped silently).</summary>
    Disconnect,
    /// <summary>Drop the oldest queued messages and tell the client with a <c>gap</c> event (reason queue-overflow).</summary>
    DropOldest,
}

/// <summary>The bridges (SSE, multiplexed WebSocket, dashboard), bound from the "Bridges" configuration section.</summary>
public sealed class BridgesOptions
{
    public const string Section = "Bridges";

    /// <summary>Whether the broker host serves the bridges in-process.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Origins allowed to open /ws (besides same origin and loopback); "*" allows any.</summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>Base64 HMAC-SHA256 key (at least 32 bytes) that signs tokens; unset = a random key per start (tokens do not survive a restart).</summary>
    public string? TokenKey { get; set; }

    public int TokenLifetimeMinutes { get; set; } = 15;

    /// <summary>Whether /sse, /ws and /api/fleet need a token; unset = whenever the broker's authentication is on.</summary>
    public bool? RequireToken { get; set; }

    /// <summary>Serve the dashboard and /js/iotrealtime.js from wwwroot.</summary>
    public bool Dashboard { get; set; } = true;

    public HistoryOptions History { get; set; } = new();

    public SseOptions Sse { get; set; } = new();

    public WebSocketOptions WebSocket { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (TokenLifetimeMinutes is < 1 or > 24 * 60) yield return $"{Section}:TokenLifetimeMinutes must be 1..1440 (was {TokenLifetimeMinutes}).";
        if (TokenKey is { Length: > 0 } key)
        {
            byte[]? bytes = null;
            try
            {
                bytes = Convert.FromBase64String(key);
            }
            catch (FormatException)
            {
            }
            if (bytes is null || bytes.Length < 32) yield return $"{Section}:TokenKey must be base64 of at least 32 bytes (e.g. 'openssl rand -base64 32').";
        }
        foreach (var origin in AllowedOrigins)
        {
            if (origin != "*" && !Uri.TryCreate(origin, UriKind.Absolute, out _)) yield return $"{Section}:AllowedOrigins: '{origin}' is not an origin like https://example.com (or *).";
        }
        foreach (var e in History.Validate()) yield return e;
        foreach (var e in Sse.Validate()) yield return e;
        foreach (var e in WebSocket.Validate()) yield return e;
    }

    /// <summary>Binds and validates the section; every problem names its key.</summary>
    public static BridgesOptions Load(IConfiguration configuration, List<string> errors)
    {
        var options = StrictBinder.Bind<BridgesOptions>(configuration, Section, errors);
        errors.AddRange(options.Validate());
        return options;
    }
}

/// <summary>When the bridges record accepted messages into their history.</summary>
public enum HistoryRecording
{
    /// <summary>From the first browser stream until <see cref="HistoryOptions.IdleSeconds"/> after the last one closed: the broker's publish path costs nothing while no browser listens.</summary>
    WhileListened,
    /// <summary>Every accepted message, from start-up: a dashboard opened later can backfill from history.</summary>
    Always,
}

/// <summary>The in-memory history kept for resume and backfill ("Bridges:History").</summary>
public sealed class HistoryOptions
{
    public HistoryRecording Record { get; set; } = HistoryRecording.WhileListened;

    /// <summary>Under WhileListened, how long recording goes on after the last stream closed, so reconnecting clients resume without a gap.</summary>
    public int IdleSeconds { get; set; } = 600;

    /// <summary>Messages kept per topic; the oldest are evicted first.</summary>
    public int MessagesPerTopic { get; set; } = 100;

    /// <summary>Topics kept; beyond, the topic that received a message least recently is evicted whole.</summary>
    public int MaxTopics { get; set; } = 10_000;

    /// <summary>Bytes kept in all (payload, topic and per-message overhead); beyond, the globally oldest messages are evicted.</summary>
    public long MaxBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>History read back from Kafka ("Bridges:History:Kafka"); only the standalone bridges use it.</summary>
    public KafkaHistoryOptions Kafka { get; set; } = new();

    internal IEnumerable<string> Validate()
    {
        foreach (var e in Kafka.Validate()) yield return e;
        if (MessagesPerTopic is < 1 or > 1_000_000) yield return $"{BridgesOptions.Section}:History:MessagesPerTopic must be 1..1000000 (was {MessagesPerTopic}).";
        if (MaxTopics is < 1 or > 10_000_000) yield return $"{BridgesOptions.Section}:History:MaxTopics must be 1..10000000 (was {MaxTopics}).";
        if (IdleSeconds is < 0 or > 86_400) yield return $"{BridgesOptions.Section}:History:IdleSeconds must be 0..86400 (was {IdleSeconds}).";
        if (MaxBytes < 1024) yield return $"{BridgesOptions.Section}:History:MaxBytes must be at least 1024 (was {MaxBytes}).";
    }
}

/// <summary>
/// "Bridges:History:Kafka": when <see cref="BootstrapServers"/> is set, the standalone bridges take their live feed from
/// these Kafka topics (the ones the broker forwards to) and SSE resumes from Kafka (<c>k:</c> positions, docs/bridges.md).
/// </summary>
public sealed class KafkaHistoryOptions
{
    public string? BootstrapServers { get; set; }

    public List<string> Topics { get; set; } = [];

    public bool Enabled => !string.IsNullOrWhiteSpace(BootstrapServers);

    internal IEnumerable<string> Validate()
    {
        const string key = BridgesOptions.Section + ":History:Kafka";
        if (!Enabled)
        {
            if (Topics.Count > 0) yield return $"{key}:BootstrapServers is required when {key}:Topics is set.";
            yield break;
        }
        if (Topics.Count == 0) yield return $"{key}:Topics must name at least one Kafka topic the broker forwards to.";
        foreach (var topic in Topics)
        {
            if (!KafkaTopicName.IsValid(topic)) yield return $"{key}:Topics: '{topic}' is not a valid Kafka topic name.";
        }
    }
}

/// <summary>Server-sent events at /sse ("Bridges:Sse").</summary>
public sealed class SseOptions
{
    public int HeartbeatSeconds { get; set; } = 15;

    /// <summary>Messages queued per stream before <see cref="Overflow"/> applies.</summary>
    public int QueueLength { get; set; } = 1024;

    public OverflowPolicy Overflow { get; set; } = OverflowPolicy.Disconnect;

    public int MaxStreamsPerClient { get; set; } = 16;

    public int MaxFiltersPerStream { get; set; } = 32;

    /// <summary>The reconnect delay sent as <c>retry:</c>; each stream adds random jitter up to <see cref="RetryJitterMs"/> so reconnects spread.</summary>
    public int RetryMs { get; set; } = 2000;

    public int RetryJitterMs { get; set; } = 1000;

    /// <summary>
    /// A stream whose write has made no progress for this long (the client stopped reading and the socket is full) is
    /// closed. 30 s outlasts any live network stall a browser recovers from, and frees a dead reader's slot and buffers.
    /// </summary>
    public int StallTimeoutSeconds { get; set; } = 30;

    internal IEnumerable<string> Validate()
    {
        const string p = BridgesOptions.Section + ":Sse:";
        if (HeartbeatSeconds is < 1 or > 3600) yield return $"{p}HeartbeatSeconds must be 1..3600 (was {HeartbeatSeconds}).";
        if (QueueLength is < 1 or > 1_000_000) yield return $"{p}QueueLength must be 1..1000000 (was {QueueLength}).";
        if (MaxStreamsPerClient < 1) yield return $"{p}MaxStreamsPerClient must be at least 1 (was {MaxStreamsPerClient}).";
        if (MaxFiltersPerStream < 1) yield return $"{p}MaxFiltersPerStream must be at least 1 (was {MaxFiltersPerStream}).";
        if (RetryMs is < 0 or > 3_600_000) yield return $"{p}RetryMs must be 0..3600000 (was {RetryMs}).";
        if (RetryJitterMs is < 0 or > 3_600_000) yield return $"{p}RetryJitterMs must be 0..3600000 (was {RetryJitterMs}).";
        if (StallTimeoutSeconds is < 1 or > 3600) yield return $"{p}StallTimeoutSeconds must be 1..3600 (was {StallTimeoutSeconds}).";
    }
}

/// <summary>The multiplexed WebSocket at /ws ("Bridges:WebSocket").</summary>
public sealed class WebSocketOptions
{
    /// <summary>Messages queued per socket (all channels) before <see cref="Overflow"/> applies.</summary>
    public int QueueLength { get; set; } = 4096;

    public OverflowPolicy Overflow { get; set; } = OverflowPolicy.DropOldest;

    public int MaxChannels { get; set; } = 64;

    public int MaxSocketsPerClient { get; set; } = 16;

    /// <summary>WebSocket ping interval; a socket that sends nothing (not even a pong) for <see cref="IdleTimeoutSeconds"/> is closed.</summary>
    public int KeepAliveSeconds { get; set; } = 10;

    /// <summary>Dead sockets are found within this many seconds (default 30: three missed pings).</summary>
    public int IdleTimeoutSeconds { get; set; } = 30;

    /// <summary>Largest client frame accepted.</summary>
    public int MaxMessageBytes { get; set; } = 256 * 1024;

    /// <summary>A socket whose send has made no progress for this long (the client stopped reading) is closed; see <see cref="SseOptions.StallTimeoutSeconds"/>.</summary>
    public int StallTimeoutSeconds { get; set; } = 30;

    internal IEnumerable<string> Validate()
    {
        const string p = BridgesOptions.Section + ":WebSocket:";
        if (QueueLength is < 1 or > 1_000_000) yield return $"{p}QueueLength must be 1..1000000 (was {QueueLength}).";
        if (MaxChannels < 1) yield return $"{p}MaxChannels must be at least 1 (was {MaxChannels}).";
        if (MaxSocketsPerClient < 1) yield return $"{p}MaxSocketsPerClient must be at least 1 (was {MaxSocketsPerClient}).";
        if (KeepAliveSeconds is < 1 or > 3600) yield return $"{p}KeepAliveSeconds must be 1..3600 (was {KeepAliveSeconds}).";
        if (IdleTimeoutSeconds < KeepAliveSeconds) yield return $"{p}IdleTimeoutSeconds must be at least KeepAliveSeconds ({KeepAliveSeconds}) (was {IdleTimeoutSeconds}).";
        if (MaxMessageBytes is < 1024 or > 16 * 1024 * 1024) yield return $"{p}MaxMessageBytes must be 1024..16777216 (was {MaxMessageBytes}).";
        if (StallTimeoutSeconds is < 1 or > 3600) yield return $"{p}StallTimeoutSeconds must be 1..3600 (was {StallTimeoutSeconds}).";
    }
}
