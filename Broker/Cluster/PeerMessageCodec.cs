using System.Buffers;
using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// The compact binary form of a batch's messages, one blob per grain call: measured here at a fraction of the CPU of
/// Orleans' generated codecs for the same records (docs/cluster.md). Per message: a flags byte (QoS, retain, which
/// optional parts follow), then length-prefixed UTF-8 strings and byte strings (varint length + 1; 0 for null).
/// </summary>
internal static class PeerMessageCodec
{
    const byte Retain = 1 << 2;
    const byte HasExpiry = 1 << 3;
    const byte HasProperties = 1 << 4;
    const byte HasGroups = 1 << 5;
    const byte HasStamp = 1 << 6;

    public static byte[] Encode(PeerMessage[] messages)
    {
        var w = new ArrayBufferWriter<byte>(messages.Length * 64 + 16);
        foreach (var m in messages)
        {
            var flags = (byte)(m.QoS & 3);
            if (m.Retain) flags |= Retain;
            if (m.ExpiryMilliseconds >= 0) flags |= HasExpiry;
            if (m.Properties is not null) flags |= HasProperties;
            if (m.SharedGroups is not null) flags |= HasGroups;
            if (m.Origin is not null) flags |= HasStamp;
            w.GetSpan(1)[0] = flags;
            w.Advance(1);
            WriteString(w, m.Topic);
            WriteBytes(w, m.Payload);
            WriteString(w, m.PublisherClientId);
            WriteString(w, m.PublisherUsername);
            if (m.ExpiryMilliseconds >= 0) WriteVarint(w, (ulong)m.ExpiryMilliseconds);
            if (m.Properties is { } p)
            {
                WriteString(w, p.ContentType);
                WriteString(w, p.ResponseTopic);
                WriteBytes(w, p.CorrelationData);
                WriteVarint(w, p.PayloadFormat);
                var count = p.UserPropertyNames?.Length ?? 0;
                WriteVarint(w, (ulong)count);
                for (var i = 0; i < count; i++)
                {
                    WriteString(w, p.UserPropertyNames![i]);
                    WriteBytes(w, p.UserPropertyValues![i]);
                }
            }
            if (m.SharedGroups is { } groups)
            {
                WriteVarint(w, (ulong)groups.Length);
                foreach (var g in groups)
                {
                    WriteString(w, g.TopicFilter);
                    WriteString(w, g.ShareGroup);
                }
            }
            if (m.Origin is not null)
            {
                WriteVarint(w, (ulong)m.AcceptedAtMs);
                WriteString(w, m.Origin);
            }
        }
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Decodes <paramref name="count"/> messages and hands each, with the shared groups picked for this node, to <paramref name="route"/>.</summary>
    public static void Decode(byte[] data, int count, DateTimeOffset now, Action<MqttMessage, ClusterRoute[]?> route) =>
        Decode(data, count, now, (m, groups, _) => route(m, groups));

    /// <summary>As above, with each message's retained stamp (default when it carries none).</summary>
    public static void Decode(byte[] data, int count, DateTimeOffset now, Action<MqttMessage, ClusterRoute[]?, RetainedStamp> route)
    {
        var r = new Reader(data);
        for (var n = 0; n < count; n++)
        {
            var flags = r.Byte();
            var topic = r.String()!;
            var payload = r.Bytes() ?? [];
            var clientId = r.String();
            var username = r.String();
            DateTimeOffset? expiresAt = (flags & HasExpiry) != 0 ? now.AddMilliseconds(r.Varint()) : null;
            string? contentType = null, responseTopic = null;
            byte[]? correlation = null;
            var format = MqttPayloadFormatIndicator.Unspecified;
            List<MqttUserProperty>? user = null;
            if ((flags & HasProperties) != 0)
            {
                contentType = r.String();
                responseTopic = r.String();
                correlation = r.Bytes();
                format = (MqttPayloadFormatIndicator)r.Varint();
                var properties = (int)r.Varint();
                if (properties > 0)
                {
                    user = new List<MqttUserProperty>(properties);
                    for (var i = 0; i < properties; i++)
                    {
                        user.Add(new MqttUserProperty(r.String()!, r.Bytes() ?? []));
                    }
                }
            }
            ClusterRoute[]? groups = null;
            if ((flags & HasGroups) != 0)
            {
                groups = new ClusterRoute[(int)r.Varint()];
                for (var i = 0; i < groups.Length; i++)
                {
                    groups[i] = new ClusterRoute(r.String()!, r.String());
                }
            }
            var stamp = (flags & HasStamp) != 0 ? new RetainedStamp((long)r.Varint(), r.String()!) : default;
            route(new MqttMessage
            {
                Topic = topic,
                Payload = payload,
                QoS = (MqttQualityOfServiceLevel)(flags & 3),
                Retain = (flags & Retain) != 0,
                ContentType = contentType,
                ResponseTopic = responseTopic,
                CorrelationData = correlation,
                PayloadFormat = format,
                UserProperties = user,
                PublisherClientId = clientId,
                PublisherUsername = username,
                ReceivedAt = now,
                ExpiresAt = expiresAt,
            }, groups, stamp);
        }
    }

    static void WriteVarint(ArrayBufferWriter<byte> w, ulong value)
    {
        var span = w.GetSpan(10);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[i++] = (byte)value;
        w.Advance(i);
    }

    static void WriteString(ArrayBufferWriter<byte> w, string? value)
    {
        if (value is null)
        {
            WriteVarint(w, 0);
            return;
        }
        var length = Encoding.UTF8.GetByteCount(value);
        WriteVarint(w, (ulong)length + 1);
        Encoding.UTF8.GetBytes(value, w.GetSpan(length));
        w.Advance(length);
    }

    static void WriteBytes(ArrayBufferWriter<byte> w, byte[]? value)
    {
        if (value is null)
        {
            WriteVarint(w, 0);
            return;
        }
        WriteVarint(w, (ulong)value.Length + 1);
        w.Write(value);
    }

    ref struct Reader(byte[] data)
    {
        readonly ReadOnlySpan<byte> _data = data;
        int _at;

        public byte Byte() => _data[_at++];

        public ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = _data[_at++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }
            throw new InvalidDataException("Malformed varint in a peer batch.");
        }

        public string? String()
        {
            var length = (int)Varint();
            if (length == 0)
            {
                return null;
            }
            var value = Encoding.UTF8.GetString(_data.Slice(_at, length - 1));
            _at += length - 1;
            return value;
        }

        public byte[]? Bytes()
        {
            var length = (int)Varint();
            if (length == 0)
            {
                return null;
            }
            var value = _data.Slice(_at, length - 1).ToArray();
            _at += length - 1;
            return value;
        }
    }
}
