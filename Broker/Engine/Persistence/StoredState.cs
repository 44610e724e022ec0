namespace IotRealtime.Broker.Engine.Persistence;

public enum StoredDeliveryState : byte
{
    Queued = 0,
    AwaitingPubAck = 1,
    AwaitingPubRec = 2,
    AwaitingPubComp = 3,
}

public sealed record StoredSubscription(
    string Filter, byte QoS, bool NoLocal, bool RetainAsPublished, byte RetainHandling, uint SubscriptionIdentifier, bool Filtered);

public sealed class StoredDelivery
{
    public required long DeliveryId { get; init; }
    public required MqttMessage Message { get; init; }
    public byte QoS { get; init; }
    public bool Retain { get; init; }
    public uint[]? SubscriptionIds { get; init; }
    /// <summary>The $share filter it came through, if any.</summary>
    public string? SharedFilter { get; init; }
    public ushort PacketId { get; set; }
    public StoredDeliveryState State { get; set; }
}

public sealed class StoredSession(string clientId)
{
    public string ClientId { get; } = clientId;
    public uint ExpiryInterval { get; set; }
    public string? Username { get; set; }
    /// <summary>Connected when last reported; after a crash such a session is treated as dropped at start-up.</summary>
    public bool Online { get; set; }
    public DateTimeOffset? DisconnectedAt { get; set; }
    public MqttMessage? Will { get; set; }
    public uint WillDelaySeconds { get; set; }
    /// <summary>Set while offline with a will waiting for its delay.</summary>
    public DateTimeOffset? WillDueAt { get; set; }
    public Dictionary<string, StoredSubscription> Subscriptions { get; } = new(StringComparer.Ordinal);
    /// <summary>Queued and in-flight deliveries, in the order they were queued.</summary>
    public OrderedDictionary<long, StoredDelivery> Deliveries { get; } = new();
    public HashSet<ushort> InboundQos2 { get; } = new();
}

/// <summary>Everything <see cref="IBrokerStore.Load"/> recovers.</summary>
public sealed class StoredState
{
    public Dictionary<string, MqttMessage> Retained { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, StoredSession> Sessions { get; } = new(StringComparer.Ordinal);
    /// <summary>Next delivery id to hand out, above every id in the store.</summary>
    public long NextDeliveryId { get; set; } = 1;
}
