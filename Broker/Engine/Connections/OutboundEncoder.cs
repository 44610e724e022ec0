using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// Encodes one connection's outgoing packets straight into its pipe, and keeps the topic aliases it gave the client.
/// Memory: the formatter is borrowed from <see cref="PacketFormatterPool"/> for one write pass (an idle connection
/// holds none), and what it encodes lives in the formatter's own buffer only until its next encode: every packet is
/// copied into the pipe at once, or into bytes the message keeps (<see cref="TryWriteShared"/>).
/// </summary>
/// <remarks>
/// A mutable struct that lives in its writer's field and is used there in place, never copied (the field must not be
/// readonly): it costs no object of its own on every connection.
/// </remarks>
internal struct OutboundEncoder(ConnectionState state)
{
    readonly ConnectionState _state = state;
    IMqttPacketFormatter? _encoder;
    Dictionary<string, ushort>? _outboundAliases;

    bool IsV5 => _state.IsV5;

    /// <summary>Gives the formatter back at the end of a write pass.</summary>
    public void EndPass()
    {
        if (_encoder is { } encoder)
        {
            _state.Broker.Formatters.Return(_state.Version, encoder);
            _encoder = null;
        }
    }

    /// <summary>
    /// Writes a plain QoS 0 delivery from the message's once-encoded bytes (see <see cref="MqttMessage.EncodedQos0V5"/>).
    /// Null when this delivery needs bytes of its own (QoS &gt; 0, retain flag, subscription ids, topic aliases, expiry).
    /// </summary>
    public long? TryWriteShared(PipeWriter output, Delivery d)
    {
        var m = d.Message;
        var version = _state.Version;
        if (d.QoS != MqttQualityOfServiceLevel.AtMostOnce || d.Retain || d.SubscriptionIds is not null || m.ExpiresAt is not null ||
            _state.ClientTopicAliasMaximum > 0 || version is not (MqttProtocolVersion.V311 or MqttProtocolVersion.V500))
        {
            return null;
        }
        var v5 = version == MqttProtocolVersion.V500;
        var bytes = v5 ? m.EncodedQos0V5 : m.EncodedQos0V311;
        if (bytes is null)
        {
            var encoder = _encoder ??= _state.Broker.Formatters.Rent(version);
            var buffer = encoder.Encode(BuildPublish(d, default));
            // copied out of the formatter's buffer: the message keeps these bytes for every subscriber of this version
            bytes = new byte[buffer.Length];
            buffer.Packet.AsSpan().CopyTo(bytes);
            System.Buffers.BuffersExtensions.CopyTo(buffer.Payload, bytes.AsSpan(buffer.Packet.Count));
            if (v5)
            {
                m.EncodedQos0V5 = bytes;
            }
            else
            {
                m.EncodedQos0V311 = bytes;
            }
        }
        var limit = _state.ClientMaximumPacketSize;
        if (limit > 0 && bytes.Length > limit)
        {
            return -1;
        }
        System.Buffers.BuffersExtensions.Write(output, bytes);
        return bytes.Length;
    }

    /// <summary>
    /// Writes a QoS 1/2 delivery that carries no MQTT 5 properties straight into the pipe (fixed header, topic, packet id,
    /// payload: MQTT-3.3.1 to 3.3.3), without a packet object or a copy through the formatter's buffer; one goes out for
    /// every QoS 1/2 delivery. Null when the delivery has properties (the formatter writes it); -1 when it exceeds the
    /// client's maximum packet size.
    /// </summary>
    public long? TryWriteDirect(PipeWriter output, Delivery d)
    {
        var m = d.Message;
        var version = _state.Version;
        if (d.QoS == MqttQualityOfServiceLevel.AtMostOnce || version is not (MqttProtocolVersion.V311 or MqttProtocolVersion.V500))
        {
            return null;
        }
        var v5 = version == MqttProtocolVersion.V500;
        if (v5 && (d.SubscriptionIds is not null || m.ExpiresAt is not null || _state.ClientTopicAliasMaximum > 0 || m.ContentType is not null ||
                   m.ResponseTopic is not null || m.CorrelationData is not null || m.PayloadFormat != MqttPayloadFormatIndicator.Unspecified ||
                   m.UserProperties is { Count: > 0 }))
        {
            return null;
        }
        var topicLength = System.Text.Encoding.UTF8.GetByteCount(m.Topic);
        var remaining = 2 + topicLength + 2 + (v5 ? 1 : 0) + m.Payload.Length;
        var lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
        var total = 1 + lengthBytes + remaining;
        var limit = _state.ClientMaximumPacketSize;
        if (limit > 0 && total > limit)
        {
            return -1;
        }
        var span = output.GetSpan(total);
        span[0] = (byte)(0x30 | ((int)d.QoS << 1) | (d.Sent ? 0x08 : 0) | (d.Retain ? 0x01 : 0));
        var i = 1;
        for (var rest = remaining; ;)
        {
            var b = (byte)(rest & 0x7F);
            rest >>= 7;
            span[i++] = rest > 0 ? (byte)(b | 0x80) : b;
            if (rest == 0)
            {
                break;
            }
        }
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(span[i..], (ushort)topicLength);
        i += 2;
        i += System.Text.Encoding.UTF8.GetBytes(m.Topic, span[i..]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(span[i..], d.PacketId);
        i += 2;
        if (v5)
        {
            span[i++] = 0; // no properties
        }
        m.Payload.Span.CopyTo(span[i..]);
        output.Advance(total);
        return total;
    }

    /// <summary>The PUBLISH of one delivery; its payload is the message's own memory, read only while encoding.</summary>
    public MqttPublishPacket BuildPublish(Delivery d, DateTimeOffset now)
    {
        var m = d.Message;
        var packet = new MqttPublishPacket
        {
            Topic = m.Topic,
            Payload = new System.Buffers.ReadOnlySequence<byte>(m.Payload),
            QualityOfServiceLevel = d.QoS,
            Retain = d.Retain,
            Dup = d.Sent && d.QoS > 0,
            PacketIdentifier = d.QoS > 0 ? d.PacketId : (ushort)0,
        };
        if (IsV5)
        {
            packet.ContentType = m.ContentType;
            packet.ResponseTopic = m.ResponseTopic;
            packet.CorrelationData = m.CorrelationData;
            packet.PayloadFormatIndicator = m.PayloadFormat;
            packet.UserProperties = m.UserProperties as List<MqttUserProperty> ?? m.UserProperties?.ToList();
            packet.SubscriptionIdentifiers = d.SubscriptionIds;
            packet.MessageExpiryInterval = m.ExpiresAt is null ? 0 : m.RemainingExpirySeconds(now);
            var aliasMaximum = _state.ClientTopicAliasMaximum;
            if (aliasMaximum > 0)
            {
                _outboundAliases ??= new Dictionary<string, ushort>(StringComparer.Ordinal);
                if (_outboundAliases.TryGetValue(m.Topic, out var alias))
                {
                    packet.Topic = string.Empty;
                    packet.TopicAlias = alias;
                }
                else if (_outboundAliases.Count < aliasMaximum)
                {
                    alias = (ushort)(_outboundAliases.Count + 1);
                    _outboundAliases[m.Topic] = alias;
                    packet.TopicAlias = alias;
                }
            }
        }
        return packet;
    }

    /// <summary>
    /// The fixed header of an acknowledgement that is only its packet id, else 0: every one in 3.1.1, and in MQTT 5 a
    /// success without reason string or user properties (the reason code may then be left out: MQTT-3.4.2.1 and the same
    /// rule for PUBREC, PUBREL, PUBCOMP). Such a packet is written without the formatter: one leaves for every QoS 1/2 publish.
    /// </summary>
    static byte ShortAckHeader(MqttPacket packet, out ushort id)
    {
        switch (packet)
        {
            case MqttPubAckPacket { ReasonCode: MqttPubAckReasonCode.Success, ReasonString: null } a when a.UserProperties is not { Count: > 0 }:
                id = a.PacketIdentifier;
                return 0x40;
            case MqttPubRecPacket { ReasonCode: MqttPubRecReasonCode.Success, ReasonString: null } r when r.UserProperties is not { Count: > 0 }:
                id = r.PacketIdentifier;
                return 0x50;
            case MqttPubRelPacket { ReasonCode: MqttPubRelReasonCode.Success, ReasonString: null } r when r.UserProperties is not { Count: > 0 }:
                id = r.PacketIdentifier;
                return 0x62;
            case MqttPubCompPacket { ReasonCode: MqttPubCompReasonCode.Success, ReasonString: null } c when c.UserProperties is not { Count: > 0 }:
                id = c.PacketIdentifier;
                return 0x70;
            default:
                id = 0;
                return 0;
        }
    }

    /// <summary>Encodes straight into the pipe. Returns the bytes written, or -1 when the packet exceeds <paramref name="limit"/>.</summary>
    public long Write(PipeWriter output, MqttPacket packet, uint limit = 0)
    {
        if (ShortAckHeader(packet, out var id) is var header and not 0)
        {
            var ack = output.GetSpan(4);
            ack[0] = header;
            ack[1] = 2;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ack[2..], id);
            output.Advance(4);
            return 4;
        }
        // borrowed for one write pass only; an idle connection holds no encoder
        var encoder = _encoder ??= _state.Broker.Formatters.Rent(_state.Version);
        var buffer = encoder.Encode(packet);
        var length = buffer.Length;
        if (limit > 0 && length > limit)
        {
            return -1;
        }
        var span = output.GetSpan(length);
        buffer.Packet.AsSpan().CopyTo(span);
        if (!buffer.Payload.IsEmpty)
        {
            System.Buffers.BuffersExtensions.CopyTo(buffer.Payload, span[buffer.Packet.Count..]);
        }
        output.Advance(length);
        return length;
    }
}
