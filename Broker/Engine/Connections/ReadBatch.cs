using IotRealtime.Broker.Engine.Sessions;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// While the reader works through one read's worth of packets, wake-ups of writers (its own, for acknowledgements,
/// and subscribers', for deliveries) are collected and sent once at the end: a writer then finds a batch to encode
/// and flush in one write, instead of waking per packet. Only the reader's thread touches it.
/// </summary>
/// <remarks>
/// A mutable struct that lives in its connection's field and is used there in place, never copied (the field must
/// not be readonly): it costs no object of its own on every connection.
/// </remarks>
internal struct ReadBatch
{
    // made on first use (an idle connection never needs them)
    HashSet<MqttConnection>? _deferredSignals;
    List<Subscription>? _routeScratch;
    int _batchThread;
    DateTimeOffset? _batchUtcNow;

    public ReadBatch() => _batchThread = -1;

    /// <summary>The list routing of this connection's publishes collects matches into, reused from one publish to the next.</summary>
    public List<Subscription> RouteScratch => _routeScratch ??= new List<Subscription>();

    public void Begin(ConnectionState state)
    {
        _batchThread = Environment.CurrentManagedThreadId;
        _batchUtcNow = null;
        state.LastActivity = state.Broker.Time.GetTimestamp();
    }

    /// <summary>The time of this read batch: every packet of one read shares it (one clock read per read, not per packet).</summary>
    public DateTimeOffset Now(TimeProvider time) => _batchThread == Environment.CurrentManagedThreadId ? _batchUtcNow ??= time.GetUtcNow() : time.GetUtcNow();

    public void End()
    {
        _batchThread = -1;
        if (_deferredSignals is { Count: > 0 } deferred)
        {
            foreach (var connection in deferred)
            {
                connection.Signal();
            }
            deferred.Clear();
        }
    }

    /// <summary>
    /// Defers waking <paramref name="target"/> to the end of this read batch. Only the reader's own thread, inside a
    /// batch, defers; any other caller (accept-stage pumps, housekeeping) is told to signal at once.
    /// </summary>
    public bool Defer(MqttConnection target)
    {
        if (_batchThread != Environment.CurrentManagedThreadId)
        {
            return false;
        }
        (_deferredSignals ??= new HashSet<MqttConnection>(ReferenceEqualityComparer.Instance)).Add(target);
        return true;
    }
}
