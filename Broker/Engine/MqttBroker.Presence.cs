using System.Buffers;
using System.Text.Json;
using IotRealtime.Broker.Engine.Operations;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// Presence: connect, disconnect and will events as an in-process feed (<see cref="SubscribePresence"/>) and, with
/// <see cref="BrokerOptions.PresenceTopics"/> (and $SYS topics on: <see cref="BrokerOptions.SysInterval"/> above 0), as non-retained $SYS/broker/clients/&lt;client id&gt;/connected|disconnected|will
/// messages with a JSON payload. Raised only on connect and disconnect, never on the publish path.
/// </summary>
public sealed partial class MqttBroker
{
    readonly Lock _presenceLock = new();
    PresenceSubscription[] _presenceSubscribers = [];

    /// <summary>Subscribes to presence events from now on; each subscriber buffers up to <paramref name="capacity"/> events, dropping the oldest beyond.</summary>
    public PresenceSubscription SubscribePresence(int capacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var subscription = new PresenceSubscription(capacity, RemovePresenceSubscriber);
        lock (_presenceLock)
        {
            _presenceSubscribers = [.. _presenceSubscribers, subscription];
        }
        return subscription;
    }

    void RemovePresenceSubscriber(PresenceSubscription subscription)
    {
        lock (_presenceLock)
        {
            _presenceSubscribers = _presenceSubscribers.Where(s => s != subscription).ToArray();
        }
    }

    internal void OnClientConnected(MqttConnection connection)
    {
        Metrics.CountConnect();
        var session = connection.Session!;
        var e = new PresenceEvent(PresenceEventKind.Connected, session.ClientId, connection.ConnectedAt ?? Time.GetUtcNow())
        {
            Username = session.Identity.Username,
            Transport = connection.Info.Transport,
            RemoteEndPoint = connection.Info.RemoteEndPoint?.ToString(),
            ProtocolVersion = ProtocolName(connection.ProtocolVersion),
        };
        RaisePresence(e, "connected");
    }

    void OnClientDisconnected(MqttConnection connection)
    {
        var session = connection.Session!;
        MqttConnection? owner;
        lock (session)
        {
            owner = session.Connection;
        }
        var e = new PresenceEvent(PresenceEventKind.Disconnected, session.ClientId, Time.GetUtcNow())
        {
            Reason = connection.CloseReason,
            Clean = connection.CleanDisconnect,
            TakenOver = owner is not null && owner != connection,
        };
        RaisePresence(e, "disconnected");
    }

    void OnWillPublished(MqttMessage will)
    {
        if (will.PublisherClientId is { } clientId)
        {
            RaisePresence(new PresenceEvent(PresenceEventKind.WillPublished, clientId, Time.GetUtcNow()) { Topic = will.Topic }, "will");
        }
    }

    void RaisePresence(PresenceEvent e, string topicSuffix)
    {
        // topic first, then the feed: a feed reader that has seen an event knows its topic message is already routed
        // (a client id that is not a single valid topic level has no presence topic; it is still in the feed)
        if (Options.PresenceTopics && Options.SysInterval > 0 && e.ClientId.AsSpan().IndexOfAny("/+#\0") < 0)
        {
            PublishPresenceTopic(e, topicSuffix);
        }
        foreach (var subscriber in Volatile.Read(ref _presenceSubscribers))
        {
            subscriber.Write(e);
        }
    }

    void PublishPresenceTopic(PresenceEvent e, string topicSuffix)
    {
        try
        {
            Route(new MqttMessage
            {
                Topic = $"$SYS/broker/clients/{e.ClientId}/{topicSuffix}",
                Payload = PresenceJson(e),
                ContentType = "application/json",
                PayloadFormat = MQTTnet.Protocol.MqttPayloadFormatIndicator.CharacterData,
                ReceivedAt = e.At,
            });
        }
        catch (Exception ex)
        {
            Log.PresencePublishFailed(e.ClientId, ex);
        }
    }

    static byte[] PresenceJson(PresenceEvent e)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("clientId", e.ClientId);
            json.WriteBoolean("online", e.Kind == PresenceEventKind.Connected || e.TakenOver == true);
            json.WriteString("event", e.Kind switch { PresenceEventKind.Connected => "connected", PresenceEventKind.Disconnected => "disconnected", _ => "will" });
            json.WriteString("at", e.At);
            if (e.Kind == PresenceEventKind.Connected)
            {
                WriteOptional(json, "username", e.Username);
                WriteOptional(json, "transport", e.Transport);
                WriteOptional(json, "remote", e.RemoteEndPoint);
                WriteOptional(json, "protocol", e.ProtocolVersion);
            }
            WriteOptional(json, "reason", e.Reason);
            if (e.Clean is { } clean)
            {
                json.WriteBoolean("clean", clean);
            }
            if (e.TakenOver is true)
            {
                json.WriteBoolean("takenOver", true);
            }
            WriteOptional(json, "topic", e.Topic);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();

        static void WriteOptional(Utf8JsonWriter json, string name, string? value)
        {
            if (value is not null)
            {
                json.WriteString(name, value);
            }
        }
    }

    static string ProtocolName(MQTTnet.Formatter.MqttProtocolVersion version) => version switch
    {
        MQTTnet.Formatter.MqttProtocolVersion.V500 => "5.0",
        MQTTnet.Formatter.MqttProtocolVersion.V311 => "3.1.1",
        MQTTnet.Formatter.MqttProtocolVersion.V310 => "3.1",
        _ => version.ToString(),
    };
}
