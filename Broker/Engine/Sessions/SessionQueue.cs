namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// A session's outbound queue: the deliveries waiting to be sent, oldest first, what they cost in memory, and the
/// publishers held back by <see cref="QueueOverflowPolicy.Backpressure"/> until it drains. Owned by its
/// <see cref="Session"/> and used only under the session's lock.
/// </summary>
internal sealed class SessionQueue
{
    // made on first use, like the session's other collections
    Queue<Delivery>? _pending;

    // publishers held back by QueueOverflowPolicy.Backpressure wait on this until the queue is down to the low-water mark
    TaskCompletionSource? _drained;
    long _drainedAtBytes;
    int _drainedAtCount;

    // a Delivery, its share of the queue's array and what routing allocated for it, measured with a memory profiler at about 90 bytes
    const int DeliveryOverhead = 96;

    /// <summary>Bytes one queued delivery holds: the message as if it were this session's alone (it is shared with other subscribers, so this errs high), plus the delivery itself.</summary>
    public static long QueueCost(Delivery delivery) => delivery.Message.Payload.Length + 2L * delivery.Message.Topic.Length + DeliveryOverhead;

    public IEnumerable<Delivery> Items => (IEnumerable<Delivery>?)_pending ?? [];
    public int Count => _pending?.Count ?? 0;

    /// <summary>What the queued deliveries cost in memory, by <see cref="QueueCost"/>.</summary>
    public long Bytes { get; private set; }

    public void Enqueue(Delivery delivery)
    {
        (_pending ??= new()).Enqueue(delivery);
        Bytes += QueueCost(delivery);
    }

    public Delivery Dequeue()
    {
        var delivery = _pending!.Dequeue();
        Bytes -= QueueCost(delivery);
        if (_drained is not null && Bytes <= _drainedAtBytes && Count <= _drainedAtCount)
        {
            ReleaseDrainWaiters();
        }
        return delivery;
    }

    public bool TryPeek(out Delivery delivery)
    {
        if (_pending is { Count: > 0 } pending)
        {
            delivery = pending.Peek();
            return true;
        }
        delivery = null!;
        return false;
    }

    public void Clear()
    {
        _pending?.Clear();
        Bytes = 0;
        ReleaseDrainWaiters();
    }

    /// <summary>
    /// A task that completes once the queue holds at most <paramref name="bytes"/> bytes and <paramref name="count"/>
    /// messages, or at once when <paramref name="nobodyDrains"/> (the session is offline or ended). All publishers held back share it.
    /// </summary>
    public Task WhenDrained(long bytes, int count, bool nobodyDrains)
    {
        if ((Bytes <= bytes && Count <= count) || nobodyDrains)
        {
            return Task.CompletedTask;
        }
        if (_drained is null)
        {
            _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            (_drainedAtBytes, _drainedAtCount) = (bytes, count);
        }
        return _drained.Task;
    }

    public void ReleaseDrainWaiters()
    {
        if (_drained is { } drained)
        {
            _drained = null;
            drained.TrySetResult();
        }
    }
}
