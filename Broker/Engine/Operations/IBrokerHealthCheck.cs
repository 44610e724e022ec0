namespace IotRealtime.Broker.Engine.Operations;

/// <summary>The outcome of one <see cref="IBrokerHealthCheck"/>; <see cref="Reason"/> is a short, human-readable cause when unhealthy.</summary>
public readonly record struct BrokerHealth(bool Healthy, string? Reason = null)
{
    public static BrokerHealth Ok { get; } = new(true);

    public static BrokerHealth Unhealthy(string reason) => new(false, reason);
}

/// <summary>
/// A component the broker depends on (the durable store, a forwarder) reporting whether it can take work. The host's
/// /readyz answers 503 while any check is unhealthy. Called per readiness probe: keep it cheap and non-blocking.
/// </summary>
public interface IBrokerHealthCheck
{
    string Name { get; }

    BrokerHealth Check();
}
