using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// An accepted application message, immutable and shared by every subscriber it is delivered to.
/// Per-delivery state (granted QoS, retain flag, subscription ids, packet id) lives in <see cref="Sessions.Delivery"/>.
/// </summary>
public sealed class MqttMessage
{
    public required string Topic { get; init; }
    public ReadOnlyMemory<byte> Payload { get; init; }
    public MqttQualityOfServiceLevel QoS { get; init; }
    public bool Retain { get; init; }
    public string? ContentType { get; init; }
    public string? ResponseTopic { get; init; }
    public byte[]? CorrelationData { get; init; }
    public MqttPayloadFormatIndicator PayloadFormat { get; init; }
    public IReadOnlyList<MqttUserProperty>? UserProperties { get; init; }

    /// <summary>Client id of the publisher (for no-local and forwarders); null for messages the broker itself made ($SYS).</summary>
    public string? PublisherClientId { get; init; }

    /// <summary>Username of the publisher, if any.</summary>
    public string? PublisherUsername { get; init; }

    /// <summary>When the broker received the message.</summary>
    public DateTimeOffset ReceivedAt { get; init; }

    /// <summary>Absolute expiry, or null when the message does not expire (MQTT 5 Message Expiry Interval).</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>
    /// The QoS 0 PUBLISH as encoded for MQTT 3.1.1 and for MQTT 5 (no alias, no subscription id, retain flag clear):
    /// the same bytes for every subscriber, so fan-out encodes once per message. Filled on first use; a race only
    /// encodes the same bytes twice.
    /// </summary>
    internal byte[]? EncodedQos0V311 { get; set; }
    internal byte[]? EncodedQos0V5 { get; set; }

    /// <summary>Id in the durable store once a persistent session queued it; 0 until then. Set under the store's lock.</summary>
    internal long StoreId { get; set; }

    public bool IsExpired(DateTimeOffset now) => ExpiresAt is { } at && now >= at;

    /// <summary>The remaining expiry interval in whole seconds to forward to a subscriber (0 when none).</summary>
    public uint RemainingExpirySeconds(DateTimeOffset now)
    {
        if (ExpiresAt is not { } at)
        {
            return 0;
        }
        var left = Math.Ceiling((at - now).TotalSeconds);
        return left <= 0 ? 1u : (uint)Math.Min(left, uint.MaxValue);
    }
}
