namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// Paces connection attempts (first connects and reconnects alike) to at most <c>rate</c> per second with bursts of at
/// most <c>capacity</c>, so that a ramp and a reconnect storm both stay inside what was asked for. Thread-safe.
/// </summary>
public sealed class TokenBucket
{
    readonly TimeProvider _time;
    readonly double _rate;
    readonly double _capacity;
    readonly Lock _lock = new();
    double _tokens;
    long _last;

    public TokenBucket(double ratePerSecond, double capacity, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ratePerSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _time = time;
        _rate = ratePerSecond;
        _capacity = capacity;
        // Starts with one token, not a full bucket: a ramp begins at its rate rather than with a burst.
        _tokens = 1;
        _last = time.GetTimestamp();
    }

    public double Rate => _rate;

    /// <summary>Takes one token if there is one; otherwise says how long until there will be.</summary>
    public bool TryTake(out TimeSpan wait)
    {
        lock (_lock)
        {
            Refill();
            if (_tokens >= 1)
            {
                _tokens -= 1;
                wait = TimeSpan.Zero;
                return true;
            }

            wait = TimeSpan.FromSeconds((1 - _tokens) / _rate);
            return false;
        }
    }

    public async ValueTask TakeAsync(CancellationToken cancellationToken)
    {
        while (!TryTake(out var wait))
            await Task.Delay(wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait, _time, cancellationToken).ConfigureAwait(false);
    }

    void Refill()
    {
        var now = _time.GetTimestamp();
        var elapsed = (now - _last) / (double)_time.TimestampFrequency;
        _last = now;
        if (elapsed > 0) _tokens = Math.Min(_capacity, _tokens + elapsed * _rate);
    }
}
