namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>What must be on disk before a QoS 1/2 acknowledgement (PUBACK, PUBREC, PUBCOMP) leaves the broker.</summary>
public enum DurabilityPolicy
{
    /// <summary>Nothing is persisted: retained messages and sessions live in memory and are lost on restart.</summary>
    None,

    /// <summary>
    /// The records are written to the log file (the operating system's page cache) before the acknowledgement. Survives
    /// a crash or <c>kill -9</c> of the broker process; a power loss or kernel crash can lose the last moments.
    /// </summary>
    Write,

    /// <summary>
    /// The records are written and fsync'ed before the acknowledgement, with group commit: every publish that arrives
    /// while one fsync runs shares the next. Survives power loss; costs one fsync per batch.
    /// </summary>
    Fsync,
}
