using IotRealtime.Broker.Engine.Pipeline;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// Publishes of one connection waiting for the accept stage, kept in arrival order: each is completed (routed and
/// acknowledged, see <see cref="InboundPipeline.Complete"/>) only after every publish that arrived before it, while the
/// reader goes on reading. Made when the accept stage first answers late; a connection whose accept stage always
/// answers at once never has one.
/// </summary>
internal sealed class InboundQueue(InboundPipeline pipeline, ConnectionState state)
{
    readonly InboundPipeline _pipeline = pipeline;
    readonly ConnectionState _state = state;
    readonly Queue<InboundEntry> _entries = new();
    Task? _pumpTask;

    /// <summary>The pump completing entries as their accept stage answers; null or completed when none waits.</summary>
    public Task? Pump => _pumpTask;

    public ValueTask<bool> Enqueue(InboundEntry entry)
    {
        var inbound = _entries;
        lock (inbound)
        {
            if (inbound.Count == 0 && entry.Pending is null)
            {
                // fast path: nothing waiting ahead of it and the accept stage answered at once
                _pipeline.Complete(entry, entry.Result);
                return ValueTask.FromResult(true);
            }
            inbound.Enqueue(entry);
            if (_pumpTask is null || _pumpTask.IsCompleted)
            {
                _pumpTask = PumpInboundAsync();
            }
            // bound what waits in the accept stage; past that, stop reading until it drains (back-pressure)
            if (inbound.Count < 2 * _state.Broker.Options.ReceiveMaximum)
            {
                return ValueTask.FromResult(true);
            }
        }
        return WaitForPumpAsync();
    }

    async ValueTask<bool> WaitForPumpAsync()
    {
        if (_pumpTask is { } pump)
        {
            await pump.ConfigureAwait(false);
        }
        return true;
    }

    async Task PumpInboundAsync()
    {
        await Task.Yield();
        var inbound = _entries;
        while (true)
        {
            InboundEntry entry;
            lock (inbound)
            {
                if (!inbound.TryPeek(out entry!))
                {
                    return;
                }
            }
            var result = entry.Result;
            if (entry.Pending is { } pending)
            {
                try
                {
                    result = await pending.ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    _state.Broker.Log.AcceptStageFailed(_state.Session?.ClientId, ex);
                    result = AcceptResult.Failed;
                }
            }
            lock (inbound)
            {
                inbound.Dequeue();
                _pipeline.Complete(entry, result);
            }
        }
    }

    /// <summary>The QoS 2 entries still waiting (their claims are undecided): given up when the connection closes.</summary>
    public List<InboundEntry> UndecidedQos2()
    {
        lock (_entries)
        {
            return _entries.Where(e => e.Claim is not null).ToList();
        }
    }
}
