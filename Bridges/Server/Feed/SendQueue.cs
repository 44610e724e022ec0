using IotRealtime.Bridges.Configuration;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// A stream's bounded send queue with a named overflow policy, and a small control lane (heartbeats, replies) that never
/// waits behind data. Writers (the feed, under its lock) never block: on overflow the queue either drops its oldest
/// data item — calling <c>onDropped</c> under its lock, so the reader learns of the loss exactly where it happened —
/// or marks itself overflowed and wakes the reader, which then closes the stream.
/// </summary>
public sealed class SendQueue<T>(int capacity, OverflowPolicy policy, Action<T>? onDropped = null)
{
    /// <summary>Control items beyond this many waiting mean the peer reads nothing at all: the stream is closed.</summary>
    public const int ControlCapacity = 256;

    readonly Lock _lock = new();
    readonly Queue<T> _data = new();
    readonly Queue<T> _control = new();
    TaskCompletionSource<bool>? _waiter;
    bool _woken;
    long _dropped;

    public int Capacity => capacity;

    public OverflowPolicy Policy => policy;

    /// <summary>Set once the queue overflowed under <see cref="OverflowPolicy.Disconnect"/> (or its control lane did): the stream must close.</summary>
    public bool Overflowed { get; private set; }

    public bool Closed { get; private set; }

    public long Dropped => Interlocked.Read(ref _dropped);

    public int Count
    {
        get
        {
            lock (_lock) return _data.Count + _control.Count;
        }
    }

    /// <summary>Queues a data item; false when it was not queued (closed, or overflowed under Disconnect).</summary>
    public bool TryEnqueue(T item)
    {
        TaskCompletionSource<bool>? wake;
        lock (_lock)
        {
            if (Closed || Overflowed) return false;
            if (_data.Count >= capacity)
            {
                if (policy == OverflowPolicy.Disconnect)
                {
                    Overflowed = true;
                    wake = TakeWaiter();
                    wake?.TrySetResult(true);
                    return false;
                }
                var dropped = _data.Dequeue();
                Interlocked.Increment(ref _dropped);
                onDropped?.Invoke(dropped);
            }
            _data.Enqueue(item);
            wake = TakeWaiter();
        }
        wake?.TrySetResult(true);
        return true;
    }

    /// <summary>Queues a control item ahead of all data.</summary>
    public bool TryEnqueueControl(T item)
    {
        TaskCompletionSource<bool>? wake;
        lock (_lock)
        {
            if (Closed || Overflowed) return false;
            if (_control.Count >= ControlCapacity)
            {
                Overflowed = true;
            }
            else
            {
                _control.Enqueue(item);
            }
            wake = TakeWaiter();
        }
        wake?.TrySetResult(true);
        return !Overflowed;
    }

    /// <summary>Wakes the reader without an item (heartbeat due, close requested).</summary>
    public void Wake()
    {
        TaskCompletionSource<bool>? wake;
        lock (_lock)
        {
            _woken = true;
            wake = TakeWaiter();
        }
        wake?.TrySetResult(true);
    }

    public void Close()
    {
        TaskCompletionSource<bool>? wake;
        lock (_lock)
        {
            Closed = true;
            wake = TakeWaiter();
        }
        wake?.TrySetResult(false);
    }

    /// <summary>Waits until there is something to read, a wake-up, overflow or close. Single reader.</summary>
    public Task WaitAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_data.Count > 0 || _control.Count > 0 || _woken || Closed || Overflowed) return Task.CompletedTask;
            _waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            return _waiter.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Moves control items, then up to <paramref name="max"/> data items into <paramref name="batch"/>; clears the wake flag.</summary>
    /// <param name="onData">Called under the queue's lock for each data item taken (and may replace it), so drops recorded before it are seen before it.</param>
    public void TakeBatch(List<T> batch, int max, Func<T, T>? onData = null)
    {
        lock (_lock)
        {
            _woken = false;
            while (_control.Count > 0) batch.Add(_control.Dequeue());
            for (var i = 0; i < max && _data.Count > 0; i++)
            {
                var item = _data.Dequeue();
                batch.Add(onData is null ? item : onData(item));
            }
        }
    }

    TaskCompletionSource<bool>? TakeWaiter()
    {
        var waiter = _waiter;
        _waiter = null;
        return waiter;
    }
}
