using System.Collections.Concurrent;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Broker.Engine.Retained;

/// <summary>The default retained store. Subscribe-time matching scans all retained topics (subscribes are rare next to publishes).</summary>
public sealed class InMemoryRetainedStore : IRetainedStore
{
    readonly ConcurrentDictionary<string, MqttMessage> _messages = new(StringComparer.Ordinal);

    public int Count => _messages.Count;

    public void Set(MqttMessage message)
    {
        if (message.Payload.IsEmpty)
        {
            _messages.TryRemove(message.Topic, out _);
        }
        else
        {
            _messages[message.Topic] = message;
        }
    }

    public bool Remove(string topic) => _messages.TryRemove(topic, out _);

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

    public IReadOnlyList<MqttMessage> All() => _messages.Values.ToList();
}
