namespace IotRealtime.Broker.Engine.Pipeline;

/// <summary>
/// Sees every message that all stages of the publish pipeline accepted, in the order they were accepted, just before
/// it is routed (e.g. the bridges' feed). It never refuses and must not wait: it runs on the thread that accepted the
/// message, often the broker's reading thread.
/// </summary>
public interface IPublishObserver
{
    void OnAccepted(MqttMessage message);
}
