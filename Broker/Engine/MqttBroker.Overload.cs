using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Pipeline;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>Admission control for CONNECT (drain, connection cap, connect rate) and the measurements overload work needs.</summary>
public sealed partial class MqttBroker
{
    readonly Lock _connectRateLock = new();
    TokenBucket? _connectRate;
    int _admitted;

    internal readonly record struct ConnectRefusalReply(MqttConnectReasonCode Reason, string? ServerReference);

    /// <summary>Connections holding a <see cref="BrokerOptions.MaxConnections"/> slot (CONNECT admitted and not yet closed).</summary>
    public int AdmittedConnections => Volatile.Read(ref _admitted);

    /// <summary>Decides whether a CONNECT may proceed; takes a connection slot when it may. Null = admitted.</summary>
    internal ConnectRefusalReply? AdmitConnect(MqttConnection connection)
    {
        if (Volatile.Read(ref _drain) is { } drain)
        {
            return Refuse(ConnectRefusal.Draining, drain.ServerReference is null ? MqttConnectReasonCode.ServerBusy : MqttConnectReasonCode.ServerMoved, drain.ServerReference);
        }
        if (Options.MaxConnections > 0)
        {
            if (Interlocked.Increment(ref _admitted) > Options.MaxConnections)
            {
                Interlocked.Decrement(ref _admitted);
                return Refuse(ConnectRefusal.MaxConnections, MqttConnectReasonCode.ServerBusy, null);
            }
            connection.Admitted = true;
        }
        if (Options.MaxConnectRate > 0)
        {
            bool allowed;
            lock (_connectRateLock)
            {
                allowed = (_connectRate ??= new TokenBucket(Options.MaxConnectRate, Time)).TryTake(1);
            }
            if (!allowed)
            {
                return Refuse(ConnectRefusal.ConnectRate, MqttConnectReasonCode.ServerBusy, null);
            }
        }
        return null;

        ConnectRefusalReply Refuse(ConnectRefusal why, MqttConnectReasonCode code, string? serverReference)
        {
            Metrics.CountConnectRefused(why);
            Log.ConnectRefused(connection.Info.RemoteEndPoint?.ToString(), why.ToString());
            return new ConnectRefusalReply(code, serverReference);
        }
    }

    /// <summary>Gives back the connection's slot and wakes whoever waits for it to close. Called once when a connection ends.</summary>
    void OnConnectionEnded(MqttConnection connection)
    {
        if (connection.Admitted)
        {
            Interlocked.Decrement(ref _admitted);
        }
        if (connection.ConnectedAt is not null)
        {
            OnClientDisconnected(connection);
        }
        connection.Closed.TrySetResult();
    }

    /// <summary>Wraps an accept stage that did not complete at once, recording how long it took.</summary>
    internal async Task<AcceptResult> MeasureAcceptAsync(ValueTask<AcceptResult> accept)
    {
        var started = Time.GetTimestamp();
        try
        {
            return await accept.ConfigureAwait(false);
        }
        finally
        {
            Metrics.RecordAccept(Time.GetElapsedTime(started));
        }
    }

    /// <summary>Messages queued (not yet in flight) across all sessions. Walks every session: for scrapes, not hot paths.</summary>
    public long QueueDepthTotal() => SumOverSessions(static s => s.PendingCount);

    /// <summary>Bytes queued for delivery across all sessions, as each session's <see cref="BrokerOptions.MaxQueuedBytes"/> budget counts them.</summary>
    public long QueuedBytesTotal() => SumOverSessions(static s => s.PendingBytes);

    /// <summary>Deliveries sent and awaiting acknowledgement across all sessions. Walks every session.</summary>
    public long InflightTotal() => SumOverSessions(static s => s.InflightCount);

    long SumOverSessions(Func<Sessions.Session, long> count)
    {
        Sessions.Session[] sessions;
        lock (_sessionsLock)
        {
            sessions = _sessions.Values.ToArray();
        }
        long total = 0;
        foreach (var session in sessions)
        {
            lock (session)
            {
                total += count(session);
            }
        }
        return total;
    }
}
