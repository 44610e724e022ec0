namespace IotRealtime.Broker.Cluster;

/// <summary>
/// Which write of a retained topic wins cluster-wide: the later accept time (milliseconds since the epoch on the
/// accepting node's clock), then the greater node id (ordinal), so every node picks the same one.
/// </summary>
public readonly record struct RetainedStamp(long AcceptedAtMs, string Origin) : IComparable<RetainedStamp>
{
    public static RetainedStamp Of(DateTimeOffset accepted, string origin) => new(accepted.ToUnixTimeMilliseconds(), origin);

    public int CompareTo(RetainedStamp other)
    {
        var byTime = AcceptedAtMs.CompareTo(other.AcceptedAtMs);
        return byTime != 0 ? byTime : string.CompareOrdinal(Origin, other.Origin);
    }

    public static bool operator >(RetainedStamp left, RetainedStamp right) => left.CompareTo(right) > 0;

    public static bool operator <(RetainedStamp left, RetainedStamp right) => left.CompareTo(right) < 0;

    public static bool operator >=(RetainedStamp left, RetainedStamp right) => left.CompareTo(right) >= 0;

    public static bool operator <=(RetainedStamp left, RetainedStamp right) => left.CompareTo(right) <= 0;
}
