namespace IotRealtime.Broker.Engine;

/// <summary>
/// <see cref="QueueOverflowPolicy.Backpressure"/> on the publishing side: routing hands the connection a task that
/// completes when the subscriber it overfilled has drained, and the read loop does not read the next packet until then
/// (or the timeout, or a close). Not reading lets the socket's buffers fill, so TCP holds the client back.
/// </summary>
internal sealed partial class MqttConnection
{
    // set by routing (under the subscriber's session lock, on any thread), taken by the read loop
    Task? _holdBack;
    // completed by RequestClose so a held-back reader stops waiting
    TaskCompletionSource? _holdBackInterrupt;
    // keep alive does not run out while the broker itself is not reading
    volatile bool _heldBack;
    // the drain this connection waited for until the timeout: it is not held back for that one again, so a subscriber
    // that never drains (or two clients waiting on each other) costs each publisher one timeout, not one per message
    Task? _gaveUpOn;

    /// <summary>Called by routing: this connection is not read again until <paramref name="drained"/> completes.</summary>
    internal void HoldBackFor(Task drained)
    {
        if (!drained.IsCompleted && drained != Volatile.Read(ref _gaveUpOn))
        {
            Volatile.Write(ref _holdBack, drained);
        }
    }

    bool MustHoldBack => Volatile.Read(ref _holdBack) is not null;

    async ValueTask WaitWhileHeldBackAsync()
    {
        var drained = Interlocked.Exchange(ref _holdBack, null);
        if (drained is null || drained.IsCompleted || _closeRequested)
        {
            return;
        }
        var interrupt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _holdBackInterrupt, interrupt);
        _heldBack = true;
        _broker.Metrics.BeginBackpressureWait();
        try
        {
            if (_closeRequested)
            {
                return;
            }
            await Task.WhenAny(drained, interrupt.Task)
                .WaitAsync(TimeSpan.FromSeconds(_broker.Options.BackpressureTimeoutSeconds), _broker.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Volatile.Write(ref _gaveUpOn, drained);
            _broker.Metrics.CountBackpressureTimeout();
        }
        finally
        {
            Volatile.Write(ref _holdBackInterrupt, null);
            Volatile.Write(ref _lastActivity, _broker.Time.GetTimestamp());
            _heldBack = false;
            _broker.Metrics.EndBackpressureWait();
        }
    }

    void InterruptHoldBack() => Volatile.Read(ref _holdBackInterrupt)?.TrySetResult();
}
