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
    /// <summary>Refused: a bound is reached (e.g. a forwarding buffer is full). MQTT 5 PUBACK/PUBREC 0x97 quota exceeded.</summary>
    QuotaExceeded,
    /// <summary>Refused for now (e.g. a downstream log is unavailable). MQTT 5 PUBACK/PUBREC 0x80 unspecified error,
    /// since 0x89 server busy is not a PUBACK/PUBREC reason code.</summary>
    ServerBusy,
    /// <summary>Refused: MQTT 5 0x80 unspecified error.</summary>
    Failed,
}
