namespace IotRealtime.Broker.Engine.Pipeline;

/// <summary>A publish stage's answer; anything but <see cref="Accepted"/> refuses the message (it is not routed).</summary>
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
