namespace IotRealtime.Broker.Engine;

/// <summary>
/// While the reader works through one read's worth of packets, wake-ups of writers (its own, for acknowledgements,
/// and subscribers', for deliveries) are collected and sent once at the end: a writer then finds a batch to encode
/// and flush in one write, instead of waking per packet.
/// </summary>
internal sealed partial class MqttConnection
{
    HashSet<MqttConnection>? _deferredSignals;
    List<Sessions.Subscription>? _routeScratch;

    /// <summary>The list routing of this connection's publishes collects matches into, reused from one publish to the next.</summary>
    internal List<Sessions.Subscription> RouteScratch => _routeScratch ??= new List<Sessions.Subscription>();
    int _batchThread = -1;

    DateTimeOffset? _batchUtcNow;

    void BeginReadBatch()
    {
        _batchThread = Environment.CurrentManagedThreadId;
        _batchUtcNow = null;
        Volatile.Write(ref _lastActivity, _broker.Time.GetTimestamp());
    }

    /// <summary>The time of this read batch: every packet of one read shares it (one clock read per read, not per packet).</summary>
    DateTimeOffset BatchNow() => _batchThread == Environment.CurrentManagedThreadId ? _batchUtcNow ??= _broker.Time.GetUtcNow() : _broker.Time.GetUtcNow();

    void EndReadBatch()
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
    /// Defers waking <paramref name="target"/> to the end of this connection's read batch. Only the reader's own thread,
    /// inside a batch, defers; any other caller (accept-stage pumps, housekeeping) is told to signal at once.
    /// </summary>
    public bool DeferSignal(MqttConnection target)
    {
        if (_batchThread != Environment.CurrentManagedThreadId)
        {
            return false;
        }
        (_deferredSignals ??= new HashSet<MqttConnection>(ReferenceEqualityComparer.Instance)).Add(target);
        return true;
    }
}
