using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Broker.Engine;

public sealed partial class MqttBroker
{
    /// <summary>
    /// Publishes on behalf of a client that is not an MQTT connection (a browser through the bridges): the message goes
    /// through the publish pipeline (Kafka, then the bridges' feed) like any client's, and is routed only if every stage
    /// accepted it. Authorization is the caller's. Returns the pipeline's answer.
    /// </summary>
    public async ValueTask<AcceptResult> PublishThroughPipelineAsync(MqttMessage message)
    {
        if (!TopicValidation.IsValidTopicName(message.Topic))
        {
            throw new ArgumentException($"'{message.Topic}' is not a valid MQTT topic name.", nameof(message));
        }
        CountPublishReceived(message.QoS);
        var result = await AcceptAsync(message).ConfigureAwait(false);
        if (result == AcceptResult.Accepted)
        {
            Route(message);
        }
        return result;
    }
}
