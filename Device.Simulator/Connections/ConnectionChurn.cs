using System.Globalization;
using System.Net;
using HdrHistogram;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>
/// Short-lived connections beside a load (<c>--churn-rate</c> per second): each opens TCP, completes MQTT 3.1.1
/// CONNECT/CONNACK with a clean session, sends DISCONNECT and closes, as devices that come and go do. Source addresses
/// rotate over <see cref="SourceCount"/> addresses from <see cref="FirstSource"/>, so the TIME_WAIT sockets a closing
/// client leaves (about a minute each) never use up one address's ephemeral ports.
/// </summary>
public sealed class ConnectionChurn(IPEndPoint broker, double ratePerSecond, TimeSpan connectTimeout, string clientIdPrefix, TimeProvider time)
{
    /// <summary>Connects in flight at once, at most: a broker that stops answering gets no unbounded pile of sockets.</summary>
    const int MaxPending = 500;

    public const string FirstSource = "127.1.0.1";
    public const int SourceCount = 64;

    readonly Lock _lock = new();
    readonly LongHistogram _latency = LatencyPercentiles.CreateHistogram();
    readonly ConcurrentFailures _failures = new();
    long _attempts, _connected;

    public long Attempts => Interlocked.Read(ref _attempts);
    public long Connected => Interlocked.Read(ref _connected);
    public ConcurrentFailures Failures => _failures;

    public LongHistogram ReadLatency()
    {
        var copy = LatencyPercentiles.CreateHistogram();
        lock (_lock) copy.Add(_latency);
        return copy;
    }

    /// <summary>The source address of attempt <paramref name="attempt"/>.</summary>
    public static IPAddress Source(long attempt)
    {
        var bytes = IPAddress.Parse(FirstSource).GetAddressBytes();
        bytes[3] = (byte)(bytes[3] + attempt % SourceCount);
        return new IPAddress(bytes);
    }

    /// <summary>Churns until <paramref name="stop"/> fires, then waits (bounded by the connect timeout) for attempts under way.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var connector = new MqttConnector(broker, connectTimeout);
        var bucket = new TokenBucket(ratePerSecond, Math.Max(1, ratePerSecond / 10), time);
        using var pending = new SemaphoreSlim(MaxPending, MaxPending);
        var attempts = new List<Task>();
        var n = 0L;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await bucket.TakeAsync(stop).ConfigureAwait(false);
                await pending.WaitAsync(stop).ConfigureAwait(false);
                var attempt = n++;
                attempts.Add(OneAsync(connector, attempt, pending));
                if (attempts.Count >= 4 * MaxPending) attempts.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException)
        {
        }

        await Task.WhenAll(attempts).ConfigureAwait(false);
    }

    async Task OneAsync(MqttConnector connector, long attempt, SemaphoreSlim pending)
    {
        try
        {
            Interlocked.Increment(ref _attempts);
            var started = time.GetTimestamp();
            var connect = MqttWire.Connect(clientIdPrefix + attempt.ToString(CultureInfo.InvariantCulture), 60);
            // Not tied to the run's end: an attempt under way finishes (or times out) so that it is counted once.
            var result = await connector.ConnectAsync(new IPEndPoint(Source(attempt), 0), connect, CancellationToken.None).ConfigureAwait(false);
            if (result.Socket is null)
            {
                _failures.Add($"churn: {result.Failure}");
                return;
            }

            var elapsed = time.GetElapsedTime(started);
            Interlocked.Increment(ref _connected);
            lock (_lock) LatencyPercentiles.Record(_latency, (long)(elapsed.Ticks / 10));
            MqttWire.SendDisconnectAndClose(result.Socket);
        }
        finally
        {
            pending.Release();
        }
    }
}
