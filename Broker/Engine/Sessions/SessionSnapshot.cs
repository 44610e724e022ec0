using System.Buffers;
using IotRealtime.Broker.Engine.Persistence;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// Everything a session holds, as plain data, for moving it to another node (<see cref="MqttBroker.HandOver"/>,
/// <see cref="MqttBroker.Adopt"/>): the identity the ACL uses, the expiry, a will still waiting for its delay,
/// subscriptions, queued deliveries, deliveries in flight with their packet ids and QoS step, the client's QoS 2 packet
/// ids awaiting PUBREL and the packet-id counter. The session it was taken from is offline from
/// <see cref="DisconnectedAt"/> (the moment of the handover when it was live). Carried between nodes as bytes
/// (<see cref="WriteTo"/>, <see cref="Read(ReadOnlySequence{byte})"/>), versioned by <see cref="Version"/>.
/// </summary>
public sealed record SessionSnapshot
{
    /// <summary>The encoding this node writes and the only one it reads.</summary>
    public const byte Version = 1;

    public required string ClientId { get; init; }

    /// <summary>The authenticated user the session acts as (what the ACL checks); null when anonymous.</summary>
    public string? Username { get; init; }

    /// <summary>Seconds the session outlives its connection, from <see cref="DisconnectedAt"/>; uint.MaxValue = never expires.</summary>
    public uint ExpiryInterval { get; init; }

    public DateTimeOffset DisconnectedAt { get; init; }

    /// <summary>A will waiting for its delay: published at its due time unless the client resumes the session first; null when none is pending.</summary>
    public SnapshotWill? PendingWill { get; init; }

    /// <summary>The last packet id handed out to a delivery: the next one continues from it.</summary>
    public ushort LastPacketId { get; init; }

    /// <summary>Subscriptions with all their options (shared ones keep their full <c>$share/…</c> filter).</summary>
    public IReadOnlyList<StoredSubscription> Subscriptions { get; init; } = [];

    /// <summary>Deliveries in flight, in the order they were first sent, each with its packet id and step (never <see cref="StoredDeliveryState.Queued"/>).</summary>
    public IReadOnlyList<SnapshotDelivery> Inflight { get; init; } = [];

    /// <summary>Deliveries waiting to be sent, oldest first.</summary>
    public IReadOnlyList<SnapshotDelivery> Queued { get; init; } = [];

    /// <summary>The client's QoS 2 packet ids whose publish was routed and awaits PUBREL: a resend of one is not routed again.</summary>
    public IReadOnlyList<ushort> InboundQos2 { get; init; } = [];

    /// <summary>Writes the snapshot in the current encoding (<see cref="Version"/> first).</summary>
    public void WriteTo(IBufferWriter<byte> output) => SessionSnapshotFormat.Write(this, output);

    /// <summary>The snapshot as bytes in the current encoding.</summary>
    public byte[] ToBytes()
    {
        var output = new ArrayBufferWriter<byte>();
        WriteTo(output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Reads a snapshot; an unknown version, a truncated or malformed snapshot is an <see cref="InvalidDataException"/> saying which.</summary>
    public static SessionSnapshot Read(ReadOnlySequence<byte> bytes) =>
        SessionSnapshotFormat.Read(bytes.IsSingleSegment ? bytes.First : bytes.ToArray());

    /// <inheritdoc cref="Read(ReadOnlySequence{byte})"/>
    public static SessionSnapshot Read(ReadOnlyMemory<byte> bytes) => SessionSnapshotFormat.Read(bytes);
}

/// <summary>A will that was waiting for its delay when the session was taken: due at <paramref name="DueAt"/>.</summary>
public sealed record SnapshotWill(MqttMessage Message, uint DelaySeconds, DateTimeOffset DueAt);

/// <summary>
/// One delivery of a session: the message (with its MQTT 5 properties and publisher), the QoS and retain flag this
/// subscriber gets, its subscription identifiers, the shared subscription it came through, and for one in flight its
/// packet id, step and whether it was sent (a resend carries DUP).
/// </summary>
public sealed record SnapshotDelivery(
    MqttMessage Message, MqttQualityOfServiceLevel QoS, bool Retain, IReadOnlyList<uint>? SubscriptionIds, string? SharedFilter,
    ushort PacketId = 0, StoredDeliveryState State = StoredDeliveryState.Queued, bool Sent = false);
