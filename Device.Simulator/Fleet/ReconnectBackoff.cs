namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>Why a device lost (or could not get) its connection, as far as the reconnect policy cares.</summary>
public enum DisconnectKind
{
    /// <summary>Network error, timeout, refused CONNACK: ordinary exponential backoff.</summary>
    Failure,

    /// <summary>MQTT 5 DISCONNECT 0x8B server shutting down: ordinary backoff, the broker is going away on purpose.</summary>
    ServerShuttingDown,

    /// <summary>MQTT 5 0x97 quota exceeded or 0x89 server busy: a longer backoff so the fleet sheds load.</summary>
    Overloaded,

    /// <summary>MQTT 5 0x9C use another server or 0x9D server moved: go to the Server Reference at once.</summary>
    Redirected,
}

/// <summary>
/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): attempt n waits a
/// random time in [min, min(max, min·2ⁿ)], so a fleet that lost its broker at one instant does not return at one instant.
/// </summary>
public sealed class ReconnectBackoff(TimeSpan min, TimeSpan max)
{
    /// <summary>Overload replies multiply the ceiling: a busy broker should see the fleet come back more slowly.</summary>
    public const int OverloadFactor = 4;

    public TimeSpan Min => min;
    public TimeSpan Max => max;

    /// <summary>The wait before reconnect attempt <paramref name="attempt"/> (0 = first after a loss), given a uniform sample in [0, 1).</summary>
    public TimeSpan Delay(int attempt, DisconnectKind kind, double random)
    {
        if (kind == DisconnectKind.Redirected) return TimeSpan.Zero;
        var ceiling = Ceiling(attempt, kind);
        var floor = kind == DisconnectKind.Overloaded ? Math.Min(ceiling.TotalSeconds, min.TotalSeconds * OverloadFactor) : min.TotalSeconds;
        return TimeSpan.FromSeconds(floor + (ceiling.TotalSeconds - floor) * Math.Clamp(random, 0, 1));
    }

    /// <summary>The largest wait attempt <paramref name="attempt"/> can draw.</summary>
    public TimeSpan Ceiling(int attempt, DisconnectKind kind)
    {
        var cap = kind == DisconnectKind.Overloaded ? max.TotalSeconds * OverloadFactor : max.TotalSeconds;
        var grown = min.TotalSeconds * Math.Pow(2, Math.Clamp(attempt, 0, 30));
        return TimeSpan.FromSeconds(Math.Min(cap, Math.Max(min.TotalSeconds, grown)));
    }

    /// <summary>Maps an MQTT 5 DISCONNECT (or CONNACK) reason code to the policy above.</summary>
    public static DisconnectKind Classify(int reasonCode) => reasonCode switch
    {
        0x9C or 0x9D => DisconnectKind.Redirected,
        0x8B => DisconnectKind.ServerShuttingDown,
        0x97 or 0x89 => DisconnectKind.Overloaded,
        _ => DisconnectKind.Failure,
    };
}
