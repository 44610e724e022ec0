using System.Runtime.InteropServices;
using IotRealtime.Broker.Engine;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Cluster;

/// <summary>Turns an accepted <see cref="MqttMessage"/> into what is queued for a peer (<see cref="PeerMessageCodec"/> decodes it there).</summary>
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
        return new PeerMessage(message.Topic, PayloadArray(message.Payload), (byte)message.QoS, message.Retain,
            message.PublisherClientId, message.PublisherUsername, expiry, properties, null);
    }

    // a message owns its payload and never changes it: an array that is exactly the payload is shared, not copied
    static byte[] PayloadArray(ReadOnlyMemory<byte> payload) =>
        MemoryMarshal.TryGetArray(payload, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : payload.ToArray();
}
