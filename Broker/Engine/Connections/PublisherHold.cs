using IotRealtime.Broker.Engine.Operations;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// <see cref="QueueOverflowPolicy.Backpressure"/> on the publishing side of one connection: routing hands it a task that
/// completes when the subscriber it overfilled has drained, and the connection's read loop does not read its next packet
/// until then (or the timeout, or a close). Not reading lets the socket's buffers fill, so TCP holds the client back.
/// </summary>
internal sealed class PublisherHold
{
    // set by routing (under the subscriber's session lock, on any thread), taken by the read loop
    Task? _drained;
    // completed by Interrupt (a close) so a held-back reader stops waiting
    TaskCompletionSource? _interrupt;
    // the drain last waited for until the timeout: not waited for again, so a subscriber that never drains (or two
    // clients that each wait for the other to read) costs each publisher one timeout, not one per message
    Task? _gaveUpOn;
    volatile bool _waiting;

    /// <summary>True while the read loop waits: keep alive does not run out while the broker itself is not reading.</summary>
    public bool IsWaiting => _waiting;

    /// <summary>Whether the read loop must call <see cref="WaitAsync"/> before it reads the next packet.</summary>
    public bool IsRequested => Volatile.Read(ref _drained) is not null;

    /// <summary>Called by routing: the connection is not read again until <paramref name="drained"/> completes.</summary>
    public void HoldUntil(Task drained)
    {
        if (!drained.IsCompleted && drained != Volatile.Read(ref _gaveUpOn))
        {
            Volatile.Write(ref _drained, drained);
        }
    }

    /// <summary>Waits for the requested drain, at most <paramref name="timeout"/>; returns at once when <paramref name="closing"/> says the connection is closing.</summary>
    public async ValueTask WaitAsync(TimeSpan timeout, TimeProvider time, BrokerMetrics metrics, Func<bool> closing)
    {
        var drained = Interlocked.Exchange(ref _drained, null);
        if (drained is null || drained.IsCompleted)
        {
            return;
        }
        var interrupt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _interrupt, interrupt);
        _waiting = true;
        metrics.BeginBackpressureWait();
        try
        {
            // checked after the interrupt is published, so a close either sees it or is seen here
            if (closing())
            {
                return;
            }
            await Task.WhenAny(drained, interrupt.Task).WaitAsync(timeout, time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Volatile.Write(ref _gaveUpOn, drained);
            metrics.CountBackpressureTimeout();
        }
        finally
        {
            Volatile.Write(ref _interrupt, null);
            _waiting = false;
            metrics.EndBackpressureWait();
        }
    }

    /// <summary>Called when the connection closes: a waiting read loop goes on at once.</summary>
    public void Interrupt() => Volatile.Read(ref _interrupt)?.TrySetResult();
}
