using IotRealtime.Broker.Engine.Operations;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// Draining for rolling deploys: stop admitting CONNECTs, then close every connection at a uniformly random moment in a
/// window so that clients reconnect elsewhere spread out rather than in one storm. Sessions stay (persistent ones keep
/// their state for the client's return); a drain is one-way for this engine instance.
/// </summary>
public sealed partial class MqttBroker
{
    sealed class DrainState(DateTimeOffset startedAt, TimeSpan window, string? serverReference)
    {
        public DateTimeOffset StartedAt { get; } = startedAt;
        public TimeSpan Window { get; } = window;
        public string? ServerReference { get; } = serverReference;
        public MqttConnection[] Targets { get; set; } = [];
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    DrainState? _drain;

    /// <summary>True once a drain has begun: CONNECTs are refused (0x89 server busy, or 0x9D server moved with a server reference; 3.1.1: return code 3).</summary>
    public bool IsDraining => Volatile.Read(ref _drain) is not null;

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

    /// <summary>
    /// Stops admitting connections and closes every open one at a random moment within <paramref name="window"/>: MQTT 5
    /// clients get DISCONNECT 0x8B server shutting down, or 0x9D server moved with <paramref name="serverReference"/>.
    /// Completes when all are closed. A second call joins the drain already under way. Cancelling closes the rest at once.
    /// </summary>
    public Task DrainAsync(TimeSpan window, string? serverReference = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, TimeSpan.Zero);
        var state = new DrainState(Time.GetUtcNow(), window, string.IsNullOrEmpty(serverReference) ? null : serverReference);
        if (Interlocked.CompareExchange(ref _drain, state, null) is { } existing)
        {
            return existing.Done.Task.WaitAsync(cancellationToken);
        }
        state.Targets = _connections.Keys.ToArray();
        Log.DrainStarted(state.Targets.Length, window.TotalSeconds, state.ServerReference);
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
            Log.DrainFinished(state.Targets.Count(c => !c.Closed.Task.IsCompleted));
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
                await Task.WhenAny(Task.Delay(delay, Time, cancellationToken), connection.Closed.Task).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        connection.RequestClose(reason, serverReference: serverReference);
    }
}
