namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// Lets one log line through per interval and counts the occurrences it held back, so an event that happens 10,000
/// times a second (a connect flood, an accept error) costs one line per interval instead of one each.
/// </summary>
public sealed class LogThrottle(TimeSpan interval, TimeProvider time)
{
    readonly long _intervalTicks = (long)(interval.TotalSeconds * time.TimestampFrequency);
    long _nextAt = long.MinValue;
    long _held;

    /// <summary>Counts one occurrence; true when a line is due, with <paramref name="count"/> = occurrences since the previous line, this one included.</summary>
    public bool Count(out long count)
    {
        Interlocked.Increment(ref _held);
        var now = time.GetTimestamp();
        var next = Volatile.Read(ref _nextAt);
        if (now < next || Interlocked.CompareExchange(ref _nextAt, now + _intervalTicks, next) != next)
        {
            count = 0;
            return false;
        }
        count = Interlocked.Exchange(ref _held, 0);
        return true;
    }
}
