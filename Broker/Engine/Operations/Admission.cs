using System.Collections.Concurrent;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Operations;

/// <summary>
/// The open connections and who may open one: CONNECT admission (drain, <see cref="BrokerOptions.MaxConnections"/>,
/// <see cref="BrokerOptions.MaxConnectRate"/>), each admitted connection's slot, and draining for rolling deploys: stop
/// admitting CONNECTs, then close every connection at a uniformly random moment in a window so that clients reconnect
/// elsewhere spread out rather than in one storm. Sessions stay (persistent ones keep their state for the client's
/// return); a drain is one-way for this engine instance.
/// </summary>
internal sealed class Admission(MqttBroker broker)
{
    sealed class DrainState(DateTimeOffset startedAt, TimeSpan window, string? serverReference)
    {
        public DateTimeOffset StartedAt { get; } = startedAt;
        public TimeSpan Window { get; } = window;
        public string? ServerReference { get; } = serverReference;
        public MqttConnection[] Targets { get; set; } = [];
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    readonly ConcurrentDictionary<MqttConnection, byte> _connections = new();
    readonly Lock _connectRateLock = new();
    TokenBucket? _connectRate;
    int _admitted;
    DrainState? _drain;

    /// <summary>Open connections, CONNECT received or not.</summary>
    public int Count => _connections.Count;

    public bool IsEmpty => _connections.IsEmpty;

    /// <summary>The open connections (a live view: connections come and go while it is walked).</summary>
    public ICollection<MqttConnection> Connections => _connections.Keys;

    /// <summary>Connections holding a <see cref="BrokerOptions.MaxConnections"/> slot (CONNECT admitted and not yet closed).</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    public bool IsDraining => Volatile.Read(ref _drain) is not null;

    public void Opened(MqttConnection connection) => _connections[connection] = 0;

    /// <summary>Decides whether a CONNECT may proceed; takes a connection slot when it may. Null = admitted.</summary>
    public MqttBroker.ConnectRefusalReply? AdmitConnect(MqttConnection connection)
    {
        if (Volatile.Read(ref _drain) is { } drain)
        {
            return Refuse(ConnectRefusal.Draining, drain.ServerReference is null ? MqttConnectReasonCode.ServerBusy : MqttConnectReasonCode.ServerMoved, drain.ServerReference);
        }
        if (broker.Options.MaxConnections > 0)
        {
            if (Interlocked.Increment(ref _admitted) > broker.Options.MaxConnections)
            {
                Interlocked.Decrement(ref _admitted);
                return Refuse(ConnectRefusal.MaxConnections, MqttConnectReasonCode.ServerBusy, null);
            }
            connection.Admitted = true;
        }
        if (broker.Options.MaxConnectRate > 0)
        {
            bool allowed;
            lock (_connectRateLock)
            {
                allowed = (_connectRate ??= new TokenBucket(broker.Options.MaxConnectRate, broker.Time)).TryTake(1);
            }
            if (!allowed)
            {
                return Refuse(ConnectRefusal.ConnectRate, MqttConnectReasonCode.ServerBusy, null);
            }
        }
        return null;

        MqttBroker.ConnectRefusalReply Refuse(ConnectRefusal why, MqttConnectReasonCode code, string? serverReference)
        {
            broker.Metrics.CountConnectRefused(why);
            broker.Log.ConnectRefused(connection.Info.RemoteEndPoint?.ToString(), why.ToString());
            return new MqttBroker.ConnectRefusalReply(code, serverReference);
        }
    }

    /// <summary>Forgets the connection and gives back its slot. Called once, as the connection's last act.</summary>
    public void Ended(MqttConnection connection)
    {
        _connections.TryRemove(connection, out _);
        if (connection.Admitted)
        {
            Interlocked.Decrement(ref _admitted);
        }
    }

    /// <summary>The current drain, or null when none has begun.</summary>
    public DrainStatus? GetDrainStatus()
    {
        if (Volatile.Read(ref _drain) is not { } drain)
        {
            return null;
        }
        var targets = drain.Targets;
        return new DrainStatus(drain.StartedAt, drain.Window, drain.ServerReference, targets.Length,
            targets.Count(c => !c.Closed.Task.IsCompleted), drain.Done.Task.IsCompleted);
    }

    /// <summary>Stops admitting connections and closes every open one at a random moment within <paramref name="window"/>; see <see cref="MqttBroker.DrainAsync"/>.</summary>
    public Task DrainAsync(TimeSpan window, string? serverReference, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, TimeSpan.Zero);
        var state = new DrainState(broker.Time.GetUtcNow(), window, string.IsNullOrEmpty(serverReference) ? null : serverReference);
        if (Interlocked.CompareExchange(ref _drain, state, null) is { } existing)
        {
            return existing.Done.Task.WaitAsync(cancellationToken);
        }
        state.Targets = _connections.Keys.ToArray();
        broker.Log.DrainStarted(state.Targets.Length, window.TotalSeconds, state.ServerReference);
        _ = RunDrainAsync(state, cancellationToken);
        return state.Done.Task;
    }

    async Task RunDrainAsync(DrainState state, CancellationToken cancellationToken)
    {
        try
        {
            var reason = state.ServerReference is null ? MqttDisconnectReasonCode.ServerShuttingDown : MqttDisconnectReasonCode.ServerMoved;
            await Task.WhenAll(state.Targets.Select(c => CloseAtRandomMomentAsync(c, state.Window, reason, state.ServerReference, cancellationToken))).ConfigureAwait(false);
            // a connection gets a few seconds after its DISCONNECT to finish (RunAsync's own bounds); do not wait longer than that
            using var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            grace.CancelAfter(TimeSpan.FromSeconds(10));
            try
            {
                await Task.WhenAll(state.Targets.Select(c => c.Closed.Task)).WaitAsync(grace.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            broker.Log.DrainFinished(state.Targets.Count(c => !c.Closed.Task.IsCompleted));
        }
        finally
        {
            state.Done.TrySetResult();
        }
    }

    async Task CloseAtRandomMomentAsync(MqttConnection connection, TimeSpan window, MqttDisconnectReasonCode reason, string? serverReference, CancellationToken cancellationToken)
    {
        var delay = window * Random.Shared.NextDouble();
        if (delay > TimeSpan.Zero)
        {
            try
            {
                await Task.WhenAny(Task.Delay(delay, broker.Time, cancellationToken), connection.Closed.Task).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        connection.RequestClose(reason, serverReference: serverReference);
    }
}
