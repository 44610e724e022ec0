using System.Collections.Concurrent;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>
/// The retained store as it was before the topic tree: a concurrent dictionary by topic whose lookup tests every
/// retained topic against the filter. Kept here only as the baseline of <see cref="RetainedStoreBenchmarks"/>.
/// </summary>
public sealed class LinearRetainedScan
{
    readonly ConcurrentDictionary<string, MqttMessage> _messages = new(StringComparer.Ordinal);

    public void Set(MqttMessage message) => _messages[message.Topic] = message;

    public IReadOnlyList<MqttMessage> Match(string topicFilter, DateTimeOffset now)
    {
        var result = new List<MqttMessage>();
        foreach (var (topic, message) in _messages)
        {
            if (!TopicValidation.Matches(topicFilter, topic))
            {
                continue;
            }
            if (message.IsExpired(now))
            {
                _messages.TryRemove(new KeyValuePair<string, MqttMessage>(topic, message));
                continue;
            }
            result.Add(message);
        }
        return result;
    }
}
