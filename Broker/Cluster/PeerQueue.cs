namespace IotRealtime.Broker.Cluster;

/// <summary>
/// The bounded, ordered queue of messages waiting for one peer, with its overflow policy. Enqueueing never blocks, so a
/// slow or dead peer never holds up a publisher; what the policy drops is counted. Thread-safe.
/// </summary>
internal sealed class PeerQueue(int capacity, PeerOverflowPolicy policy)
{
    readonly Queue<PeerMessage> _messages = new();
    readonly Lock _gate = new();
    long _dropped;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _messages.Count;
            }
        }
    }

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues <paramref name="message"/>; false when the policy dropped a message (this one under DropNew, the oldest under DropOldest).</summary>
    public bool Enqueue(PeerMessage message)
    {
        lock (_gate)
        {
            if (_messages.Count >= capacity)
            {
                Interlocked.Increment(ref _dropped);
                if (policy == PeerOverflowPolicy.DropNew)
                {
                    return false;
                }
                _messages.Dequeue();
                _messages.Enqueue(message);
                return false;
            }
            _messages.Enqueue(message);
            return true;
        }
    }

    /// <summary>Takes up to <paramref name="max"/> messages, oldest first.</summary>
    public PeerMessage[] Take(int max)
    {
        lock (_gate)
        {
            var count = Math.Min(max, _messages.Count);
            if (count == 0)
            {
                return [];
            }
            var batch = new PeerMessage[count];
            for (var i = 0; i < count; i++)
            {
                batch[i] = _messages.Dequeue();
            }
            return batch;
        }
    }

    public void Clear()
    {
        lock (_gate)
        {
            _messages.Clear();
        }
    }
}
