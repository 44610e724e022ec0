using System.Diagnostics;
using System.Globalization;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios;

/// <summary>
/// Opens <see cref="SimulatorOptions.Connections"/> connections at no more than <see cref="SimulatorOptions.Rate"/>
/// per second, holds them idle for <see cref="SimulatorOptions.HoldSeconds"/>, then disconnects them and reports.
/// Used to measure broker memory per idle connection.
/// </summary>
public sealed class IdleScenario(SimulatorOptions options, TimeProvider time, TextWriter output)
{
    /// <summary>Marks the moment every connect attempt has finished and the hold begins; scripts wait for it.</summary>
    public const string HoldingMarker = "HOLDING";

    readonly ConnectionSet _connections = new(options.Connections);
    readonly ConcurrentFailures _failures = new();
    readonly double[] _latencyMs = CreateLatencyArray(options.Connections);
    int _finished;

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var broker = options.BrokerEndPoint;
        var sources = new SourceAddressPlan(options.SourceBase, options.PerSource, options.Connections);
        var sourceText = sources.EndPoints.Count == 0 ? "OS-chosen" : string.Join(", ", sources.EndPoints.Select(e => e.Address));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"idle: {options.Connections} connections to {broker} at {options.Rate}/s, hold {options.HoldSeconds} s, keep-alive {options.KeepAliveSeconds} s, sources {sourceText}"));

        var rampStart = time.GetTimestamp();
        using (var progress = StartProgress("ramp"))
        {
            await RampAsync(sources, cancellationToken).ConfigureAwait(false);
        }

        var rampSeconds = time.GetElapsedTime(rampStart).TotalSeconds;
        var connected = _connections.Open;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{HoldingMarker} connected={connected} failed={_failures.Total} ramp_s={rampSeconds:F1}"));

        var holdStart = time.GetTimestamp();
        var dropped = await HoldAsync(cancellationToken).ConfigureAwait(false);
        var holdSeconds = time.GetElapsedTime(holdStart).TotalSeconds;
        dropped += _connections.SweepClosed();
        var heldAtEnd = _connections.Open;

        _connections.DisconnectAll();

        var report = new IdleReport(
            "idle",
            broker.ToString(),
            options.Connections,
            connected,
            _failures.Total,
            dropped,
            heldAtEnd,
            Math.Round(rampSeconds, 2),
            Math.Round(holdSeconds, 2),
            cancellationToken.IsCancellationRequested,
            LatencySummary.From(_latencyMs.Where(ms => ms >= 0)),
            _failures.Snapshot());
        report.WriteText(output);
        if (options.JsonPath is not null) report.WriteJson(options.JsonPath);

        return report.HeldAtEnd == options.Connections ? 0 : 1;
    }

    async Task RampAsync(SourceAddressPlan sources, CancellationToken cancellationToken)
    {
        var connector = new MqttConnector(options.BrokerEndPoint, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        var keepAlive = (ushort)options.KeepAliveSeconds;
        using var pending = new SemaphoreSlim(options.MaxPending);
        var start = time.GetTimestamp();
        var tasks = new List<Task>(Math.Min(options.Connections, 100_000));

        for (var i = 0; i < options.Connections && !cancellationToken.IsCancellationRequested; i++)
        {
            // Pace by schedule rather than by fixed sleeps so a slow tick is made up for, never exceeded.
            var due = TimeSpan.FromSeconds((double)i / options.Rate) - time.GetElapsedTime(start);
            if (due > TimeSpan.FromMilliseconds(1))
            {
                try
                {
                    await Task.Delay(due, time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            try
            {
                await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            tasks.Add(ConnectOneAsync(connector, i, sources.For(i), keepAlive, pending, cancellationToken));
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    async Task ConnectOneAsync(MqttConnector connector, int index, System.Net.IPEndPoint? source, ushort keepAlive, SemaphoreSlim pending, CancellationToken cancellationToken)
    {
        try
        {
            var packet = MqttWire.Connect(string.Format(CultureInfo.InvariantCulture, options.ClientIdPattern, index), keepAlive);
            var started = time.GetTimestamp();
            var result = await connector.ConnectAsync(source, packet, cancellationToken).ConfigureAwait(false);
            if (result.Socket is not null)
            {
                _latencyMs[index] = time.GetElapsedTime(started).TotalMilliseconds;
                _connections.Add(index, result.Socket);
            }
            else
            {
                _failures.Add(result.Failure ?? "unknown");
            }
        }
        finally
        {
            Interlocked.Increment(ref _finished);
            pending.Release();
        }
    }

    async Task<int> HoldAsync(CancellationToken cancellationToken)
    {
        var dropped = 0;
        var holdStart = time.GetTimestamp();
        var hold = TimeSpan.FromSeconds(options.HoldSeconds);
        // Ping at half the keep-alive so the broker never times a connection out during a long hold.
        var pingEvery = options.KeepAliveSeconds > 0 ? TimeSpan.FromSeconds(options.KeepAliveSeconds / 2.0) : Timeout.InfiniteTimeSpan;
        var nextPing = pingEvery;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        try
        {
            while (time.GetElapsedTime(holdStart) < hold && await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                var elapsed = time.GetElapsedTime(holdStart);
                if (pingEvery != Timeout.InfiniteTimeSpan && elapsed >= nextPing)
                {
                    dropped += _connections.PingAll();
                    nextPing += pingEvery;
                }

                dropped += _connections.SweepClosed();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[hold {elapsed.TotalSeconds,5:F0}s] open {_connections.Open}, dropped {dropped}"));
            }
        }
        catch (OperationCanceledException)
        {
        }

        return dropped;
    }

    IDisposable StartProgress(string phase)
    {
        var start = time.GetTimestamp();
        var last = 0;
        return time.CreateTimer(_ =>
        {
            var finished = Volatile.Read(ref _finished);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{phase} {time.GetElapsedTime(start).TotalSeconds,5:F0}s] open {_connections.Open}/{options.Connections}, failed {_failures.Total}, +{finished - last}/s"));
            last = finished;
        }, null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    static double[] CreateLatencyArray(int count)
    {
        var array = new double[count];
        Array.Fill(array, -1);
        return array;
    }
}
