namespace IotRealtime.Broker.Engine.Retained;

/// <summary>
/// Retained messages by topic. Implementations are thread-safe. An empty payload is never stored (it clears).
/// Expired messages are not returned by <see cref="Match"/>.
/// </summary>
public interface IRetainedStore
{
    int Count { get; }

    /// <summary>Stores <paramref name="message"/> as the retained message of its topic, or clears the topic when the payload is empty.</summary>
    void Set(MqttMessage message);

    bool Remove(string topic);

    /// <summary>Retained messages whose topic matches the plain topic filter, in no particular order.</summary>
    IReadOnlyList<MqttMessage> Match(string topicFilter, DateTimeOffset now);
}
