namespace IotRealtime.Broker.Engine.Security;

/// <summary>Per-topic authorization. Synchronous because it sits on the publish hot path; implementations precompile their rules.</summary>
public interface IMqttAuthorizer
{
    bool CanPublish(ClientIdentity client, string topic);

    /// <summary>
    /// Whether a subscription to <paramref name="topicFilter"/> (possibly <c>$share/…</c>) is allowed. A filter that reaches
    /// both allowed and denied topics (e.g. <c>#</c> next to a denied subtree) may be granted as
    /// <see cref="SubscribeDecision.AllowFiltered"/>: each message is then checked with <see cref="CanReceive"/>.
    /// </summary>
    SubscribeDecision CanSubscribe(ClientIdentity client, string topicFilter);

    /// <summary>Whether a message on <paramref name="topic"/> may be delivered on a filtered subscription.</summary>
    bool CanReceive(ClientIdentity client, string topic);
}

public enum SubscribeDecision
{
    Deny,
    Allow,
    /// <summary>Allowed, but some topics the filter matches are denied: deliveries are checked one by one.</summary>
    AllowFiltered,
}

public sealed class AllowAllAuthorizer : IMqttAuthorizer
{
    public bool CanPublish(ClientIdentity client, string topic) => true;

    public SubscribeDecision CanSubscribe(ClientIdentity client, string topicFilter) => SubscribeDecision.Allow;

    public bool CanReceive(ClientIdentity client, string topic) => true;
}
