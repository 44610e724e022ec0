namespace IotRealtime.Broker.Engine.Security;

/// <summary>Per-topic authorization. Synchronous because it sits on the publish hot path; implementations precompile their rules.</summary>
public interface IMqttAuthorizer
{
    bool CanPublish(ClientIdentity client, string topic);

    bool CanSubscribe(ClientIdentity client, string topicFilter);
}

public sealed class AllowAllAuthorizer : IMqttAuthorizer
{
    public bool CanPublish(ClientIdentity client, string topic) => true;

    public bool CanSubscribe(ClientIdentity client, string topicFilter) => true;
}
