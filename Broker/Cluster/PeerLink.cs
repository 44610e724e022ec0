using IotRealtime.Broker.Engine.Cluster;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// This node's link to one peer silo: the route changes the peer has not had yet, the bounded queue of messages for
/// it, and one pump that sends both in batches, one grain call in flight. The call's completion is the peer's
/// acknowledgement; a failed call is sent again, the same batch, until it succeeds or the peer leaves the membership
/// (then <see cref="DisposeAsync"/> ends the pump). So a peer may see a batch twice after a failure, never out of order.
/// </summary>
internal sealed class PeerLink : IAsyncDisposable
{
    static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(50);
    static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(1);
    // retained messages per sync batch: large batches, as a join may bring 100,000 of them
    const int RetainedSyncBatch = 4096;

    readonly ClusterNode _owner;
    readonly INodeGrain _grain;
    readonly PeerQueue _queue;
    readonly int _batchMessages;
    readonly TimeProvider _time;
    readonly ILogger _log;
    readonly SemaphoreSlim _signal = new(0, 1);
    readonly CancellationTokenSource _stop = new();
    // route changes not sent yet, the last change per route winning; under _routesGate, taken inside the owner's route lock
    readonly Lock _routesGate = new();
    readonly Dictionary<ClusterRoute, bool> _pendingRoutes = [];
    bool _routesReset = true;
    // route changes recorded, and how many of them the peer has acknowledged; with the waiters for the rest (under _routesGate)
    long _routeChanges;
    long _routeChangesAcknowledged;
    readonly List<(long Upto, TaskCompletionSource Done)> _routeWaiters = [];
    // the retained set to send before any queued message (a new link only); taken by the pump alone
    PeerMessage[] _retainedSync = [];
    int _retainedSent;
    int _signaled;
    bool _synced;
    Task _pump = Task.CompletedTask;

    long _crossed;
    long _crossedBytes;
    long _retries;
    long _batches;
    long _roundTripTicks;

    public PeerLink(ClusterNode owner, string node, string silo, INodeGrain grain, BrokerClusterOptions options, TimeProvider time, ILogger log)
    {
        _owner = owner;
        Node = node;
        Silo = silo;
        _grain = grain;
        _queue = new PeerQueue(options.PeerQueueMessages, options.PeerOverflowPolicy);
        _batchMessages = options.PeerBatchMessages;
        _time = time;
        _log = log;
    }

    public string Node { get; }

    /// <summary>The peer's silo incarnation (address and generation): a restarted peer gets a new link.</summary>
    public string Silo { get; }

    /// <summary>True once the peer acknowledged this node's full route set.</summary>
    public bool Synced => Volatile.Read(ref _synced);

    public long Crossed => Interlocked.Read(ref _crossed);
    public long CrossedBytes => Interlocked.Read(ref _crossedBytes);
    public long Retries => Interlocked.Read(ref _retries);
    public long Dropped => _queue.Dropped;
    public int Queued => _queue.Count;
    public long Batches => Interlocked.Read(ref _batches);
    public double RoundTripSeconds => TimeSpan.FromTicks(Interlocked.Read(ref _roundTripTicks)).TotalSeconds;

    public void Start() => _pump = Task.Run(PumpAsync);

    /// <summary>Queues a message for the peer; never blocks.</summary>
    public void Enqueue(PeerMessage message)
    {
        _queue.Enqueue(message);
        Signal();
    }

    /// <summary>Records a local route change for the peer. Called under the owner's route lock, in the order of the changes.</summary>
    public void RouteChanged(ClusterRoute route, bool added)
    {
        lock (_routesGate)
        {
            _routeChanges++;
            if (!_routesReset)
            {
                _pendingRoutes[route] = added;
            }
        }
        Signal();
    }

    /// <summary>Completes once the peer has acknowledged every route change recorded so far (or the link ends); null when it has.</summary>
    public Task? RoutesAcknowledged()
    {
        lock (_routesGate)
        {
            if (_routeChangesAcknowledged >= _routeChanges)
            {
                return null;
            }
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _routeWaiters.Add((_routeChanges, done));
            return done.Task;
        }
    }

    void AcknowledgeRoutes(long upto, bool all)
    {
        List<TaskCompletionSource>? done = null;
        lock (_routesGate)
        {
            _routeChangesAcknowledged = all ? long.MaxValue : Math.Max(_routeChangesAcknowledged, upto);
            for (var i = _routeWaiters.Count - 1; i >= 0; i--)
            {
                if (all || _routeWaiters[i].Upto <= _routeChangesAcknowledged)
                {
                    (done ??= []).Add(_routeWaiters[i].Done);
                    _routeWaiters.RemoveAt(i);
                }
            }
        }
        done?.ForEach(d => d.TrySetResult());
    }

    /// <summary>Sets the retained set this node sends first, in batches of its own, before the start of the pump.</summary>
    public void SyncRetained(PeerMessage[] retained) => _retainedSync = retained;

    /// <summary>Retained messages of the first sync still to send.</summary>
    public int RetainedSyncLeft => _retainedSync.Length - Volatile.Read(ref _retainedSent);

    /// <summary>Has the pump look for work (a new link's full route set).</summary>
    public void Wake() => Signal();

    /// <summary>
    /// The routes to send next: the full set after a (re)start, else the changes since; with the count of route changes
    /// they include (acknowledged when the batch is). Called under the owner's route lock.
    /// </summary>
    public (bool Reset, PeerRoute[] Added, PeerRoute[] Removed, long Upto) TakeRoutes(IReadOnlyCollection<ClusterRoute> local)
    {
        lock (_routesGate)
        {
            if (_routesReset)
            {
                _routesReset = false;
                _pendingRoutes.Clear();
                return (true, local.Select(ToPeer).ToArray(), [], _routeChanges);
            }
            if (_pendingRoutes.Count == 0)
            {
                return (false, [], [], _routeChanges);
            }
            var added = _pendingRoutes.Where(p => p.Value).Select(p => ToPeer(p.Key)).ToArray();
            var removed = _pendingRoutes.Where(p => !p.Value).Select(p => ToPeer(p.Key)).ToArray();
            _pendingRoutes.Clear();
            return (false, added, removed, _routeChanges);
        }
    }

    static PeerRoute ToPeer(ClusterRoute route) => new(route.TopicFilter, route.ShareGroup);

    void Signal()
    {
        if (Interlocked.Exchange(ref _signaled, 1) == 0)
        {
            _signal.Release();
        }
    }

    async Task PumpAsync()
    {
        var ct = _stop.Token;
        try
        {
            while (true)
            {
                await _signal.WaitAsync(ct).ConfigureAwait(false);
                Volatile.Write(ref _signaled, 0);
                while (TakeBatch() is { } next)
                {
                    await SendAsync(next.Batch, next.Bytes, ct).ConfigureAwait(false);
                    AcknowledgeRoutes(next.RoutesUpto, all: false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the peer left the membership or this node is stopping
        }
    }

    (PeerBatch Batch, long Bytes, long RoutesUpto)? TakeBatch()
    {
        var (reset, added, removed, upto) = _owner.TakeRoutes(this);
        if (_retainedSent < _retainedSync.Length)
        {
            // the retained set first, so the live messages queued meanwhile (newer) are stored after it
            var count = Math.Min(RetainedSyncBatch, _retainedSync.Length - _retainedSent);
            var sync = PeerMessageCodec.Encode(_retainedSync.AsSpan(_retainedSent, count).ToArray());
            Volatile.Write(ref _retainedSent, _retainedSent + count);
            if (_retainedSent == _retainedSync.Length)
            {
                _retainedSync = [];
                Volatile.Write(ref _retainedSent, 0);
            }
            return (new PeerBatch(_owner.NodeId, _owner.LocalSilo, reset, added, removed, [], 0, sync, count), 0, upto);
        }
        var messages = _queue.Take(_batchMessages);
        if (!reset && added.Length == 0 && removed.Length == 0 && messages.Length == 0)
        {
            // nothing to send: every route change taken so far went in an earlier batch
            AcknowledgeRoutes(upto, all: false);
            return null;
        }
        long bytes = 0;
        foreach (var m in messages)
        {
            bytes += m.Size;
        }
        var encoded = messages.Length == 0 ? [] : PeerMessageCodec.Encode(messages);
        return (new PeerBatch(_owner.NodeId, _owner.LocalSilo, reset, added, removed, encoded, messages.Length), bytes, upto);
    }

    async Task SendAsync(PeerBatch batch, long bytes, CancellationToken ct)
    {
        var delay = FirstRetry;
        while (true)
        {
            var started = _time.GetTimestamp();
            try
            {
                await _grain.Receive(batch).WaitAsync(ct).ConfigureAwait(false);
                Interlocked.Add(ref _roundTripTicks, _time.GetElapsedTime(started).Ticks);
                Interlocked.Increment(ref _batches);
                Interlocked.Add(ref _crossed, batch.MessageCount);
                Interlocked.Add(ref _crossedBytes, bytes);
                if (batch.RoutesReset)
                {
                    Volatile.Write(ref _synced, true);
                }
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                // retried until the peer acknowledges or leaves the membership (then ct ends this)
                Interlocked.Increment(ref _retries);
                ClusterLog.BatchFailed(_log, Node, e.GetType().Name + ": " + e.Message, (int)delay.TotalMilliseconds);
                await Task.Delay(delay, _time, ct).ConfigureAwait(false);
                delay = delay * 2 > LastRetry ? LastRetry : delay * 2;
            }
        }
    }

    /// <summary>Ends the pump and drops what is queued; may be called more than once. The signal and token stay undisposed: a late route change may still touch them.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _pump.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // a cancelled retry delay
        }
        _queue.Clear();
        AcknowledgeRoutes(0, all: true); // nobody waits on a peer that left
    }
}
