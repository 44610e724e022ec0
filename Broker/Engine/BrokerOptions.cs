namespace IotRealtime.Broker.Engine;

/// <summary>What happens when a client's outbound queue is full.</summary>
public enum QueueOverflowPolicy
{
    /// <summary>Discard the oldest queued message to make room (the default: a live dashboard wants the newest data).</summary>
    DropOldest,
    /// <summary>Discard the message that does not fit.</summary>
    DropNew,
    /// <summary>Disconnect the client (MQTT 5 reason 0x97 quota exceeded).</summary>
    Disconnect,
    /// <summary>
    /// Slow the publishers down instead of dropping: once an online subscriber's queue holds more than half its budget,
    /// each MQTT connection that publishes to it is not read until the queue is back under a quarter (or the subscriber
    /// goes offline), for at most <see cref="BrokerOptions.BackpressureTimeoutSeconds"/> per wait; the publisher's TCP
    /// window then closes and its client blocks. One slow subscriber slows every publisher that feeds it. A queue that
    /// still reaches the whole budget drops its oldest, as with <see cref="DropOldest"/>.
    /// </summary>
    Backpressure,
}

/// <summary>Engine settings, bound from the "Broker" configuration section. Validated by <see cref="Validate"/>.</summary>
public sealed class BrokerOptions
{
    /// <summary>Largest packet we accept (MQTT 5 Maximum Packet Size in CONNACK); bigger ones get DISCONNECT 0x95.</summary>
    public int MaximumPacketSize { get; set; } = 1024 * 1024;

    /// <summary>How many QoS 1/2 publishes a client may have unacknowledged towards us (MQTT 5 Receive Maximum); exceeding it gets DISCONNECT 0x93.</summary>
    public int ReceiveMaximum { get; set; } = 1024;

    /// <summary>
    /// Outbound in-flight window for MQTT 3.1.1 clients, which cannot announce one (Mosquitto's default is 20). A small
    /// window caps a fast subscriber at one round trip per window: measured here, 100 held QoS 1 fan-in to a third of what 1000 allows.
    /// </summary>
    public int MaxInflightOutbound { get; set; } = 1000;

    /// <summary>
    /// Bytes queued per client beyond the in-flight window, online or offline (payload, topic and about 100 bytes of
    /// bookkeeping per message). The queue absorbs a subscriber that falls behind for a while (a GC pause, a busy
    /// consumer): 16 MiB holds about 25 s of a 4,000 msg/s stream of 100-byte telemetry. It costs memory only while used.
    /// </summary>
    public long MaxQueuedBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Messages queued per client, a second guard beside <see cref="MaxQueuedBytes"/> against floods of tiny messages.</summary>
    public int MaxQueuedMessages { get; set; } = 100_000;

    public QueueOverflowPolicy QueueOverflowPolicy { get; set; } = QueueOverflowPolicy.DropOldest;

    /// <summary>
    /// With <see cref="QueueOverflowPolicy.Backpressure"/>: the longest a publisher's connection goes unread waiting for
    /// one subscriber to drain. It is then read again and not held back for that subscriber until its queue has drained
    /// once, so a subscriber that stopped reading (or two clients that each wait for the other to read what it publishes)
    /// costs each publisher one timeout; the subscriber's queue then drops its oldest.
    /// </summary>
    public int BackpressureTimeoutSeconds { get; set; } = 5;

    /// <summary>
    /// A client whose socket takes nothing more for this many seconds (it stopped reading, and the kernel's buffers are
    /// full) is disconnected; meanwhile its queue stays within <see cref="MaxQueuedBytes"/>. 0 = never.
    /// </summary>
    public int WriteStallTimeoutSeconds { get; set; } = 30;

    /// <summary>Whether QoS 0 messages are queued for offline persistent sessions (MQTT allows either; Mosquitto does not by default).</summary>
    public bool QueueQos0WhenOffline { get; set; }

    /// <summary>Highest keep alive a client may ask for in seconds; 0 = no limit. A larger request is answered with Server Keep Alive.</summary>
    public int MaxKeepAlive { get; set; }

    /// <summary>Cap on the session expiry interval a client may ask for, in seconds.</summary>
    public uint MaxSessionExpiryInterval { get; set; } = uint.MaxValue;

    /// <summary>Topic aliases we accept from each client (MQTT 5 Topic Alias Maximum in CONNACK).</summary>
    public int TopicAliasMaximum { get; set; } = 64;

    /// <summary>Highest QoS we accept on PUBLISH (0..2).</summary>
    public int MaximumQoS { get; set; } = 2;

    public bool RetainAvailable { get; set; } = true;

    public bool SharedSubscriptionsAvailable { get; set; } = true;

    public bool WildcardSubscriptionsAvailable { get; set; } = true;

    /// <summary>Seconds a client has to send CONNECT after the transport opens.</summary>
    public int ConnectTimeoutSeconds { get; set; } = 10;

    /// <summary>How often $SYS/broker/... topics are published, in seconds; 0 disables them.</summary>
    public int SysInterval { get; set; } = 10;

    /// <summary>
    /// SUBACK reason an MQTT 5 client gets when the ACL denies a subscription: 0x87 (Not authorized, the default) or
    /// 0x80 (Unspecified error, which hides that the filter is protected and is what the Paho interoperability suite expects).
    /// MQTT 3.1.1 clients always get 0x80, the only failure code 3.1.1 has.
    /// </summary>
    public int SubscribeDeniedReasonCode { get; set; } = 0x87;

    /// <summary>Maximum length of a client id we accept.</summary>
    public int MaxClientIdLength { get; set; } = 256;

    /// <summary>Cap on connected MQTT clients (after CONNECT); 0 = no cap. Over it a CONNECT gets CONNACK 0x89 server busy (3.1.1: return code 3).</summary>
    public int MaxConnections { get; set; }

    /// <summary>Accepted CONNECTs per second across the broker (token bucket, one second of burst); 0 = no limit. Excess gets CONNACK 0x89 (3.1.1: 3).</summary>
    public int MaxConnectRate { get; set; }

    /// <summary>
    /// Inbound PUBLISH packets per second per client (token bucket, one second of burst); 0 = no limit. Excess QoS 1/2 gets
    /// PUBACK/PUBREC 0x97 quota exceeded in MQTT 5, excess QoS 0 is dropped; a client over twice the limit is disconnected (0x97).
    /// </summary>
    public int MaxPublishRatePerClient { get; set; }

    /// <summary>Inbound PUBLISH payload bytes per second per client, same policy as <see cref="MaxPublishRatePerClient"/>; 0 = no limit.</summary>
    public long MaxPublishBytesPerClient { get; set; }

    /// <summary>Whether connect, disconnect and will events are also published as $SYS/broker/clients/&lt;id&gt;/... topics (only while <see cref="SysInterval"/> is above 0; the in-process feed is always on).</summary>
    public bool PresenceTopics { get; set; } = true;

    public IEnumerable<string> Validate()
    {
        if (MaximumPacketSize is < 64 or > 268_435_455) yield return $"Broker:MaximumPacketSize must be between 64 and 268435455 (was {MaximumPacketSize}).";
        if (ReceiveMaximum is < 1 or > 65535) yield return $"Broker:ReceiveMaximum must be between 1 and 65535 (was {ReceiveMaximum}).";
        if (MaxInflightOutbound is < 1 or > 65535) yield return $"Broker:MaxInflightOutbound must be between 1 and 65535 (was {MaxInflightOutbound}).";
        if (MaxQueuedBytes < 1024) yield return $"Broker:MaxQueuedBytes must be at least 1024 (was {MaxQueuedBytes}).";
        if (MaxQueuedMessages < 1) yield return $"Broker:MaxQueuedMessages must be at least 1 (was {MaxQueuedMessages}).";
        if (BackpressureTimeoutSeconds < 1) yield return $"Broker:BackpressureTimeoutSeconds must be at least 1 (was {BackpressureTimeoutSeconds}).";
        if (WriteStallTimeoutSeconds < 0) yield return $"Broker:WriteStallTimeoutSeconds must be 0 (never) or a number of seconds (was {WriteStallTimeoutSeconds}).";
        if (MaxKeepAlive is < 0 or > 65535) yield return $"Broker:MaxKeepAlive must be between 0 and 65535 (was {MaxKeepAlive}).";
        if (TopicAliasMaximum is < 0 or > 65535) yield return $"Broker:TopicAliasMaximum must be between 0 and 65535 (was {TopicAliasMaximum}).";
        if (MaximumQoS is < 0 or > 2) yield return $"Broker:MaximumQoS must be 0, 1 or 2 (was {MaximumQoS}).";
        if (ConnectTimeoutSeconds < 1) yield return $"Broker:ConnectTimeoutSeconds must be at least 1 (was {ConnectTimeoutSeconds}).";
        if (SysInterval < 0) yield return $"Broker:SysInterval must be 0 (off) or a number of seconds (was {SysInterval}).";
        if (SubscribeDeniedReasonCode is not (0x80 or 0x87)) yield return $"Broker:SubscribeDeniedReasonCode must be 128 (0x80) or 135 (0x87) (was {SubscribeDeniedReasonCode}).";
        if (MaxClientIdLength is < 23 or > 65535) yield return $"Broker:MaxClientIdLength must be between 23 and 65535 (was {MaxClientIdLength}).";
        if (MaxConnections < 0) yield return $"Broker:MaxConnections must be 0 (no cap) or a positive number (was {MaxConnections}).";
        if (MaxConnectRate < 0) yield return $"Broker:MaxConnectRate must be 0 (no limit) or connects per second (was {MaxConnectRate}).";
        if (MaxPublishRatePerClient < 0) yield return $"Broker:MaxPublishRatePerClient must be 0 (no limit) or publishes per second (was {MaxPublishRatePerClient}).";
        if (MaxPublishBytesPerClient < 0) yield return $"Broker:MaxPublishBytesPerClient must be 0 (no limit) or bytes per second (was {MaxPublishBytesPerClient}).";
    }
}
