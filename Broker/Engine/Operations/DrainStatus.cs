namespace IotRealtime.Broker.Engine.Operations;

/// <summary>A drain as it stands: when it began, over what window, how many connections it had to close and how many are still open.</summary>
public sealed record DrainStatus(
    DateTimeOffset StartedAt,
    TimeSpan Window,
    string? ServerReference,
    int ConnectionsAtStart,
    int Remaining,
    bool Completed);
