using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace IotRealtime.Broker.Engine.Operations;

/// <summary>
/// What the broker says about itself. Presence: connect, disconnect and will events as an in-process feed
/// (<see cref="Subscribe"/>) and, with <see cref="BrokerOptions.PresenceTopics"/> (and $SYS topics on:
/// <see cref="BrokerOptions.SysInterval"/> above 0), as non-retained $SYS/broker/clients/&lt;client id&gt;/connected|disconnected|will
/// messages with a JSON payload, raised only on connect and disconnect, never on the publish path. And the retained
/// $SYS/broker/... counters, published by housekeeping every <see cref="BrokerOptions.SysInterval"/> seconds.
/// </summary>
internal sealed class SysPublisher(MqttBroker broker)
{
    DateTimeOffset _nextSys;

    readonly Lock _presenceLock = new();
    PresenceSubscription[] _presenceSubscribers = [];

    /// <summary>Subscribes to presence events from now on; each subscriber buffers up to <paramref name="capacity"/> events, dropping the oldest beyond.</summary>
    public PresenceSubscription Subscribe(int capacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var subscription = new PresenceSubscription(capacity, RemoveSubscriber);
        lock (_presenceLock)
        {
            _presenceSubscribers = [.. _presenceSubscribers, subscription];
        }
        return subscription;
    }

    void RemoveSubscriber(PresenceSubscription subscription)
    {
        lock (_presenceLock)
        {
            _presenceSubscribers = _presenceSubscribers.Where(s => s != subscription).ToArray();
        }
    }

    public void ClientConnected(MqttConnection connection)
    {
        broker.Metrics.CountConnect();
        var session = connection.Session!;
        var e = new PresenceEvent(PresenceEventKind.Connected, session.ClientId, connection.ConnectedAt ?? broker.Time.GetUtcNow())
        {
            Username = session.Identity.Username,
            Transport = connection.Info.Transport,
            RemoteEndPoint = connection.Info.RemoteEndPoint?.ToString(),
            ProtocolVersion = ProtocolName(connection.ProtocolVersion),
        };
        RaisePresence(e, "connected");
    }

    public void ClientDisconnected(MqttConnection connection)
    {
        var session = connection.Session!;
        var owner = session.Read(0, static (s, _) => s.Connection);
        var e = new PresenceEvent(PresenceEventKind.Disconnected, session.ClientId, broker.Time.GetUtcNow())
        {
            Reason = connection.CloseReason,
            Clean = connection.CleanDisconnect,
            TakenOver = owner is not null && owner != connection,
        };
        RaisePresence(e, "disconnected");
    }

    public void WillPublished(MqttMessage will)
    {
        if (will.PublisherClientId is { } clientId)
        {
            RaisePresence(new PresenceEvent(PresenceEventKind.WillPublished, clientId, broker.Time.GetUtcNow()) { Topic = will.Topic }, "will");
        }
    }

    void RaisePresence(PresenceEvent e, string topicSuffix)
    {
        // topic first, then the feed: a feed reader that has seen an event knows its topic message is already routed
        // (a client id that is not a single valid topic level has no presence topic; it is still in the feed)
        if (broker.Options.PresenceTopics && broker.Options.SysInterval > 0 && e.ClientId.AsSpan().IndexOfAny("/+#\0") < 0)
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
            broker.Route(new MqttMessage
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
            broker.Log.PresencePublishFailed(e.ClientId, ex);
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

    internal static string ProtocolName(MQTTnet.Formatter.MqttProtocolVersion version) => version switch
    {
        MQTTnet.Formatter.MqttProtocolVersion.V500 => "5.0",
        MQTTnet.Formatter.MqttProtocolVersion.V311 => "3.1.1",
        MQTTnet.Formatter.MqttProtocolVersion.V310 => "3.1",
        _ => version.ToString(),
    };

    public void PublishSysTopicsIfDue(DateTimeOffset now)
    {
        if (broker.Options.SysInterval <= 0 || now < _nextSys)
        {
            return;
        }
        _nextSys = now.AddSeconds(broker.Options.SysInterval);
        var uptime = (long)(now - broker.StartedAt).TotalSeconds;
        PublishSys("$SYS/broker/version", "IotRealtime " + MqttBroker.Version, now);
        PublishSys("$SYS/broker/uptime", uptime.ToString(CultureInfo.InvariantCulture) + " seconds", now);
        PublishSys("$SYS/broker/clients/connected", broker.ConnectedClients, now);
        PublishSys("$SYS/broker/clients/total", broker.SessionCount, now);
        PublishSys("$SYS/broker/messages/received", broker.MessagesReceived, now);
        PublishSys("$SYS/broker/messages/sent", broker.MessagesSent, now);
        PublishSys("$SYS/broker/bytes/received", broker.BytesReceived, now);
        PublishSys("$SYS/broker/bytes/sent", broker.BytesSent, now);
        PublishSys("$SYS/broker/subscriptions/count", broker.SubscriptionCount, now);
        PublishSys("$SYS/broker/retained messages/count", broker.Retained.Count, now);
        broker.ClusterLink?.PublishSys(now, (topic, value) => PublishSys(topic, value, now));
    }

    void PublishSys(string topic, long value, DateTimeOffset now) => PublishSys(topic, value.ToString(CultureInfo.InvariantCulture), now);

    void PublishSys(string topic, string value, DateTimeOffset now) =>
        broker.Route(new MqttMessage { Topic = topic, Payload = Encoding.UTF8.GetBytes(value), Retain = true, ReceivedAt = now });
}
