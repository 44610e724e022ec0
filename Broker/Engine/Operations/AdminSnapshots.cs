namespace IotRealtime.Broker.Engine.Operations;

/// <summary>A connected client as it was when asked (a copy: nothing in it changes afterwards).</summary>
public sealed record ClientSnapshot(
    string ClientId,
    string? Username,
    string Transport,
    string? RemoteEndPoint,
    string ProtocolVersion,
    DateTimeOffset ConnectedAt,
    int Subscriptions,
    int QueueDepth,
    int Inflight,
    uint SessionExpiryInterval);

/// <summary>A session, online or offline, as it was when asked. <see cref="ExpiresAt"/> is set only while offline and expiring.</summary>
public sealed record SessionSnapshot(
    string ClientId,
    string? Username,
    bool Online,
    int Subscriptions,
    IReadOnlyList<string> SubscriptionFilters,
    int QueueDepth,
    int Inflight,
    uint ExpiryInterval,
    DateTimeOffset? ExpiresAt,
    bool WillPending);

/// <summary>A retained message (the message itself is immutable and shared).</summary>
public sealed record RetainedSnapshot(string Topic, int QoS, int Size, DateTimeOffset ReceivedAt, DateTimeOffset? ExpiresAt, string? ContentType, bool IsUtf8, ReadOnlyMemory<byte> Payload);
