namespace IotRealtime.Broker.Engine.Pipeline;

/// <summary>
/// A stage of the publish pipeline (e.g. the Kafka forwarder): it sees every authorized message before it is routed,
/// may refuse it and may answer late. The QoS 1/2 acknowledgement waits for every stage's answer; a stage that answers
/// late does not stall the connection (reading goes on while up to Receive Maximum publishes are pending, and
/// acknowledgements still leave in the order the publishes arrived).
/// </summary>
public interface IPublishStage
{
    ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken);
}
