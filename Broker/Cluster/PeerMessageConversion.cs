using IotRealtime.Broker.Engine;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Cluster;

/// <summary>Turns an accepted <see cref="MqttMessage"/> into what crosses to a peer, and back on the peer.</summary>
internal static class PeerMessageConversion
{
    public static PeerMessage ToPeer(MqttMessage message, DateTimeOffset now)
    {
        PeerMessageProperties? properties = null;
        if (message.ContentType is not null || message.ResponseTopic is not null || message.CorrelationData is not null
            || message.PayloadFormat != MqttPayloadFormatIndicator.Unspecified || message.UserProperties is { Count: > 0 })
        {
            string[]? names = null;
            byte[][]? values = null;
            if (message.UserProperties is { Count: > 0 } user)
            {
                names = new string[user.Count];
                values = new byte[user.Count][];
                for (var i = 0; i < user.Count; i++)
                {
                    names[i] = user[i].Name;
                    values[i] = user[i].ValueBuffer.ToArray();
                }
            }
            properties = new PeerMessageProperties(message.ContentType, message.ResponseTopic, message.CorrelationData, (byte)message.PayloadFormat, names, values);
        }
        // the time left, at least 1 ms so an almost expired message stays an expiring one
        var expiry = message.ExpiresAt is { } at ? Math.Max(1, (long)(at - now).TotalMilliseconds) : -1;
        return new PeerMessage(message.Topic, message.Payload.ToArray(), (byte)message.QoS, message.Retain,
            message.PublisherClientId, message.PublisherUsername, expiry, properties, null);
    }

    public static MqttMessage FromPeer(PeerMessage message, DateTimeOffset now)
    {
        var properties = message.Properties;
        List<MqttUserProperty>? user = null;
        if (properties?.UserPropertyNames is { } names && properties.UserPropertyValues is { } values)
        {
            user = new List<MqttUserProperty>(names.Length);
            for (var i = 0; i < names.Length; i++)
            {
                user.Add(new MqttUserProperty(names[i], values[i]));
            }
        }
        return new MqttMessage
        {
            Topic = message.Topic,
            Payload = message.Payload,
            QoS = (MqttQualityOfServiceLevel)message.QoS,
            Retain = message.Retain,
            ContentType = properties?.ContentType,
            ResponseTopic = properties?.ResponseTopic,
            CorrelationData = properties?.CorrelationData,
            PayloadFormat = (MqttPayloadFormatIndicator)(properties?.PayloadFormat ?? 0),
            UserProperties = user,
            PublisherClientId = message.PublisherClientId,
            PublisherUsername = message.PublisherUsername,
            ReceivedAt = now,
            ExpiresAt = message.ExpiryMilliseconds >= 0 ? now.AddMilliseconds(message.ExpiryMilliseconds) : null,
        };
    }
}
