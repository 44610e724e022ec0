namespace IotRealtime.Broker.Engine.Operations;

/// <summary>
/// A token bucket refilled continuously at <see cref="Rate"/> per second and holding at most one second of tokens. A take
/// succeeds while the bucket is not in debt, so one item larger than the bucket (a big payload) still passes and is paid
/// off over the following seconds. Not thread-safe.
/// </summary>
internal sealed class TokenBucket
{
    readonly TimeProvider _time;
    double _tokens;
    long _last;

    public TokenBucket(double rate, TimeProvider time)
    {
        Rate = rate;
        _time = time;
        _tokens = rate;
        _last = time.GetTimestamp();
    }

    public double Rate { get; }

    public bool TryTake(double cost)
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(Rate, _tokens + _time.GetElapsedTime(_last, now).TotalSeconds * Rate);
        _last = now;
        if (_tokens <= 0)
        {
            return false;
        }
        _tokens -= cost;
        return true;
    }
}
