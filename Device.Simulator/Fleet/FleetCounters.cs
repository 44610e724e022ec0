using HdrHistogram;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>What the devices of one process have done so far; updated from many tasks, read by progress and the report.</summary>
public sealed class FleetCounters(TimeProvider? time = null)
{
    readonly TimeProvider _time = time ?? TimeProvider.System;
    readonly Lock _histogramLock = new();
    long _lastFirstConnectUnixMs;
    long _connectAttempts, _connectFailures, _online, _everConnected, _disconnects, _reconnects, _redirects;
    long _published, _publishFailures, _commands, _subscribed;

    public LongHistogram ConnectLatency { get; } = LatencyPercentiles.CreateHistogram();
    public LongHistogram PublishAckLatency { get; } = LatencyPercentiles.CreateHistogram();
    public ConcurrentFailures Failures { get; } = new();

    public long ConnectAttempts => Interlocked.Read(ref _connectAttempts);
    public long ConnectFailures => Interlocked.Read(ref _connectFailures);
    public long Online => Interlocked.Read(ref _online);
    public long EverConnected => Interlocked.Read(ref _everConnected);
    public long Disconnects => Interlocked.Read(ref _disconnects);
    public long Reconnects => Interlocked.Read(ref _reconnects);
    public long Redirects => Interlocked.Read(ref _redirects);
    public long Published => Interlocked.Read(ref _published);
    public long PublishFailures => Interlocked.Read(ref _publishFailures);
    public long Commands => Interlocked.Read(ref _commands);

    /// <summary>When the latest first connect completed (Unix ms, 0 = none): with the run's start it gives the connect rate.</summary>
    public long LastFirstConnectUnixMs => Interlocked.Read(ref _lastFirstConnectUnixMs);

    public void ConnectAttempt() => Interlocked.Increment(ref _connectAttempts);

    public void ConnectFailed(string reason)
    {
        Interlocked.Increment(ref _connectFailures);
        Failures.Add(reason);
    }

    public void Connected(bool first, TimeSpan latency)
    {
        Interlocked.Increment(ref _online);
        if (first)
        {
            Interlocked.Increment(ref _everConnected);
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var seen = Interlocked.Read(ref _lastFirstConnectUnixMs);
            while (now > seen && Interlocked.CompareExchange(ref _lastFirstConnectUnixMs, now, seen) is var was && was != seen) seen = was;
        }
        else
        {
            Interlocked.Increment(ref _reconnects);
        }

        Record(ConnectLatency, latency);
    }

    public void Disconnected(bool unexpected, string? reason)
    {
        Interlocked.Decrement(ref _online);
        if (!unexpected) return;
        Interlocked.Increment(ref _disconnects);
        if (reason is not null) Failures.Add(reason);
    }

    public void Redirected() => Interlocked.Increment(ref _redirects);

    public void PublishCompleted(TimeSpan? ackLatency)
    {
        Interlocked.Increment(ref _published);
        if (ackLatency is { } latency) Record(PublishAckLatency, latency);
    }

    public void PublishFailed(string reason)
    {
        Interlocked.Increment(ref _publishFailures);
        Failures.Add(reason);
    }

    public void CommandReceived() => Interlocked.Increment(ref _commands);

    /// <summary>Command subscriptions the broker granted (SUBACK), over every connect.</summary>
    public long Subscribed => Interlocked.Read(ref _subscribed);

    public void SubscriptionGranted() => Interlocked.Increment(ref _subscribed);

    public void Record(LongHistogram histogram, TimeSpan latency)
    {
        lock (_histogramLock) LatencyPercentiles.Record(histogram, (long)(latency.Ticks / 10));
    }

    public T ReadHistograms<T>(Func<T> read)
    {
        lock (_histogramLock) return read();
    }
}
