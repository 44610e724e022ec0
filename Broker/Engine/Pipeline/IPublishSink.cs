namespace IotRealtime.Broker.Engine.Pipeline;

/// <summary>
/// The accept stage of the inbound publish pipeline (decode → authorize → accept → route → acknowledge).
/// A sink (durable store, Kafka forwarder) sees every authorized message before it is routed; the QoS 1/2
/// acknowledgement waits for every sink's result. A sink that completes asynchronously does not stall the
/// connection: reading continues while up to Receive Maximum publishes are pending, and acknowledgements
/// still leave in the order the publishes arrived.
/// </summary>
public interface IPublishSink
{
    ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken);
}

public enum AcceptResult
{
    Accepted = 0,
    /// <summary>Refused for now (e.g. a downstream log is unavailable): MQTT 5 0x97 quota exceeded / server busy.</summary>
    QuotaExceeded,
    ServerBusy,
    /// <summary>Refused: MQTT 5 0x80 unspecified error.</summary>
    Failed,
}
