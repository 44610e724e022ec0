using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>One subscription of one session. Shared subscriptions keep the full <c>$share/…</c> filter as <see cref="Filter"/>.</summary>
internal sealed class Subscription(Session session, string filter, string? shareGroup, string topicFilter)
{
    public Session Session { get; } = session;
    public string Filter { get; } = filter;
    public string? ShareGroup { get; } = shareGroup;
    /// <summary>The filter without the $share prefix: what topics are matched against.</summary>
    public string TopicFilter { get; } = topicFilter;
    public MqttQualityOfServiceLevel QoS { get; set; }
    public bool NoLocal { get; set; }
    public bool RetainAsPublished { get; set; }
    public MqttRetainHandling RetainHandling { get; set; }
    public uint SubscriptionIdentifier { get; set; }
    /// <summary>The ACL allowed only part of what the filter matches: each delivery is checked.</summary>
    public bool Filtered { get; set; }

    /// <summary>Sets what SUBSCRIBE asked for (a new subscription, or an existing one's options replaced). Under the session's lock.</summary>
    public void SetOptions(MqttQualityOfServiceLevel qos, MQTTnet.Packets.MqttTopicFilter options, uint subscriptionId, bool filtered)
    {
        QoS = qos;
        NoLocal = options.NoLocal;
        RetainAsPublished = options.RetainAsPublished;
        RetainHandling = options.RetainHandling;
        SubscriptionIdentifier = subscriptionId;
        Filtered = filtered;
    }
}
