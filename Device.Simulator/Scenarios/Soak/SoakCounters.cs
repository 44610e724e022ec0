using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.Soak;

/// <summary>Connection events of a soak run's clients; updated from many tasks.</summary>
public sealed class SoakCounters
{
    long _connectAttempts, _connectFailures, _reconnects, _connectionsLost, _sessionsLost, _clientKills;

    public ConcurrentFailures Failures { get; } = new();

    public long ConnectAttempts => Interlocked.Read(ref _connectAttempts);
    public long ConnectFailures => Interlocked.Read(ref _connectFailures);
    public long Reconnects => Interlocked.Read(ref _reconnects);
    public long ConnectionsLost => Interlocked.Read(ref _connectionsLost);

    /// <summary>Reconnects of a persistent client whose CONNACK said the broker no longer held its session.</summary>
    public long SessionsLost => Interlocked.Read(ref _sessionsLost);

    public long ClientKills => Interlocked.Read(ref _clientKills);

    public void ConnectAttempt() => Interlocked.Increment(ref _connectAttempts);

    public void ConnectFailed(string reason)
    {
        Interlocked.Increment(ref _connectFailures);
        Failures.Add($"connect: {reason}");
    }

    public void Reconnected() => Interlocked.Increment(ref _reconnects);

    public void ConnectionLost() => Interlocked.Increment(ref _connectionsLost);

    public void SessionLost(string clientId)
    {
        Interlocked.Increment(ref _sessionsLost);
        Failures.Add($"session not present on reconnect: {clientId}");
    }

    public void ClientKilled() => Interlocked.Increment(ref _clientKills);

    public void Failure(string what) => Failures.Add(what);
}
