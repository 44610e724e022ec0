using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Persistence;

internal enum RecordType : byte
{
    Message = 1,
    RetainSet = 2,
    RetainClear = 3,
    SessionStarted = 4,
    SessionOffline = 5,
    SessionExpiryChanged = 6,
    SessionEnded = 7,
    Subscribed = 8,
    Unsubscribed = 9,
    Enqueued = 10,
    InflightChanged = 11,
    Completed = 12,
    InboundQos2Added = 13,
    InboundQos2Released = 14,
}

/// <summary>Binary encoding of log records (the framing — length and CRC — is the log's).</summary>
internal static class StoreRecords
{
    public static void WriteMessage(BinaryWriter w, MqttMessage m)
    {
        w.Write(m.Topic);
        w.Write(m.Payload.Length);
        w.Write(m.Payload.Span);
        w.Write((byte)m.QoS);
        w.Write(m.Retain);
        WriteNullable(w, m.ContentType);
        WriteNullable(w, m.ResponseTopic);
        WriteBytes(w, m.CorrelationData);
        w.Write((byte)m.PayloadFormat);
        var properties = m.UserProperties;
        w.Write(properties?.Count ?? 0);
        if (properties is not null)
        {
            foreach (var p in properties)
            {
                w.Write(p.Name);
                w.Write(p.ValueBuffer.Length);
                w.Write(p.ValueBuffer.Span);
            }
        }
        WriteNullable(w, m.PublisherClientId);
        WriteNullable(w, m.PublisherUsername);
        w.Write(m.ReceivedAt.UtcTicks);
        w.Write(m.ExpiresAt is { } at ? at.UtcTicks : 0L);
    }

    public static MqttMessage ReadMessage(BinaryReader r, long storeId = 0)
    {
        var topic = r.ReadString();
        var payload = r.ReadBytes(r.ReadInt32());
        var qos = (MqttQualityOfServiceLevel)r.ReadByte();
        var retain = r.ReadBoolean();
        var contentType = ReadNullable(r);
        var responseTopic = ReadNullable(r);
        var correlation = ReadBytes(r);
        var format = (MqttPayloadFormatIndicator)r.ReadByte();
        var count = r.ReadInt32();
        List<MqttUserProperty>? properties = null;
        if (count > 0)
        {
            properties = new List<MqttUserProperty>(count);
            for (var i = 0; i < count; i++)
            {
                var name = r.ReadString();
                properties.Add(new MqttUserProperty(name, new ReadOnlyMemory<byte>(r.ReadBytes(r.ReadInt32()))));
            }
        }
        var publisher = ReadNullable(r);
        var username = ReadNullable(r);
        var received = new DateTimeOffset(r.ReadInt64(), TimeSpan.Zero);
        var expires = r.ReadInt64();
        return new MqttMessage
        {
            Topic = topic,
            Payload = payload,
            QoS = qos,
            Retain = retain,
            ContentType = contentType,
            ResponseTopic = responseTopic,
            CorrelationData = correlation,
            PayloadFormat = format,
            UserProperties = properties,
            PublisherClientId = publisher,
            PublisherUsername = username,
            ReceivedAt = received,
            ExpiresAt = expires == 0 ? null : new DateTimeOffset(expires, TimeSpan.Zero),
            StoreId = storeId,
        };
    }

    public static void WriteSessionStarted(BinaryWriter w, string clientId, uint expiry, string? username, MqttMessage? will, uint willDelay)
    {
        w.Write(clientId);
        w.Write(expiry);
        WriteNullable(w, username);
        w.Write(will is not null);
        if (will is not null)
        {
            WriteMessage(w, will);
            w.Write(willDelay);
        }
    }

    public static void WriteSessionOffline(BinaryWriter w, string clientId, DateTimeOffset at, DateTimeOffset? willDueAt)
    {
        w.Write(clientId);
        w.Write(at.UtcTicks);
        w.Write(willDueAt is { } due ? due.UtcTicks : 0L);
    }

    public static void WriteNullable(BinaryWriter w, string? value)
    {
        w.Write(value is not null);
        if (value is not null)
        {
            w.Write(value);
        }
    }

    public static string? ReadNullable(BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;

    static void WriteBytes(BinaryWriter w, byte[]? value)
    {
        w.Write(value?.Length ?? -1);
        if (value is not null)
        {
            w.Write(value);
        }
    }

    static byte[]? ReadBytes(BinaryReader r)
    {
        var length = r.ReadInt32();
        return length < 0 ? null : r.ReadBytes(length);
    }

    public static void WriteSubscription(BinaryWriter w, StoredSubscription s)
    {
        w.Write(s.Filter);
        w.Write(s.QoS);
        w.Write(s.NoLocal);
        w.Write(s.RetainAsPublished);
        w.Write(s.RetainHandling);
        w.Write(s.SubscriptionIdentifier);
        w.Write(s.Filtered);
    }

    public static StoredSubscription ReadSubscription(BinaryReader r) =>
        new(r.ReadString(), r.ReadByte(), r.ReadBoolean(), r.ReadBoolean(), r.ReadByte(), r.ReadUInt32(), r.ReadBoolean());

    public static void WriteDelivery(BinaryWriter w, StoredDelivery d)
    {
        w.Write(d.DeliveryId);
        w.Write(d.Message.StoreId);
        w.Write(d.QoS);
        w.Write(d.Retain);
        w.Write(d.SubscriptionIds?.Length ?? 0);
        foreach (var id in d.SubscriptionIds ?? [])
        {
            w.Write(id);
        }
        WriteNullable(w, d.SharedFilter);
    }

    /// <summary>Reads a delivery; null when its message is not in the log (a record lost with a cut tail).</summary>
    public static StoredDelivery? ReadDelivery(BinaryReader r, IReadOnlyDictionary<long, MqttMessage> messages)
    {
        var deliveryId = r.ReadInt64();
        var messageId = r.ReadInt64();
        var qos = r.ReadByte();
        var retain = r.ReadBoolean();
        var count = r.ReadInt32();
        uint[]? ids = count > 0 ? new uint[count] : null;
        for (var i = 0; i < count; i++)
        {
            ids![i] = r.ReadUInt32();
        }
        var shared = ReadNullable(r);
        return messages.TryGetValue(messageId, out var message)
            ? new StoredDelivery { DeliveryId = deliveryId, Message = message, QoS = qos, Retain = retain, SubscriptionIds = ids, SharedFilter = shared }
            : null;
    }
}
