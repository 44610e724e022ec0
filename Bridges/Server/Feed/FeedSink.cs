using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Pipeline;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// The broker's accept stage feeding the bridges: registered after every other sink, so it sees only messages the
/// others (durable store, Kafka) accepted, and it never refuses one. Synchronous and lock-short: appending to history
/// and queueing to listeners never waits on a stream; while the feed does not record (no browser listens under
/// Bridges:History:Record=WhileListened) it costs one volatile read.
/// </summary>
public sealed class FeedSink(FeedHub hub) : IPublishSink
{
    public ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken)
    {
        hub.Append(message.Topic, message.Payload, (int)message.QoS, message.Retain, message.ReceivedAt);
        return ValueTask.FromResult(AcceptResult.Accepted);
    }
}
