namespace IotRealtime.Broker.Host.Operations;

/// <summary>The admin API and graceful shutdown, bound from the "Admin" configuration section.</summary>
public sealed class AdminOptions
{
    public const string Section = "Admin";

    /// <summary>
    /// Bearer token the admin API (/api) requires (<c>Authorization: Bearer &lt;token&gt;</c>). Unset: the API answers only
    /// requests from loopback addresses, so a broker reachable from the network is not administrable without a token.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>Seconds over which SIGTERM / host disposal spreads the disconnects of a drain before stopping (0 = all at once).</summary>
    public int ShutdownDrainSeconds { get; set; } = 5;

    /// <summary>Window of a POST /api/drain that names none, in seconds (long enough to spread a large fleet's reconnects).</summary>
    public int DrainWindowSeconds { get; set; } = 30;

    public IEnumerable<string> Validate()
    {
        if (Token is { Length: > 0 and < 16 }) yield return $"{Section}:Token must be at least 16 characters (a guessable token protects nothing).";
        if (ShutdownDrainSeconds is < 0 or > 600) yield return $"{Section}:ShutdownDrainSeconds must be between 0 and 600 (was {ShutdownDrainSeconds}).";
        if (DrainWindowSeconds is < 0 or > 3600) yield return $"{Section}:DrainWindowSeconds must be between 0 and 3600 (was {DrainWindowSeconds}).";
    }
}
