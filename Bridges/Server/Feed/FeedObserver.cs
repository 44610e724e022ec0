using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Pipeline;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The bridges' feed as an observer of the broker's publish pipeline: the host puts it after every stage (Kafka), so
/// it sees only messages they accepted, and it never refuses one. Synchronous and lock-short: appending to history and
/// queueing to listeners never waits on a stream; while the feed does not record (no browser listens under
/// Bridges:History:Record=WhileListened) it costs one volatile read.
/// </summary>
public sealed class FeedObserver(FeedHub hub) : IPublishObserver
{
    public void OnAccepted(MqttMessage message) =>
        hub.Append(message.Topic, message.Payload, (int)message.QoS, message.Retain, message.ReceivedAt);
}
