using System.Globalization;
using System.Net;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Fleet.Raw;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.Fleet;

/// <summary>
/// The fleet of one process: this shard's devices, paced by one token bucket, for at most
/// <see cref="FleetOptions.DurationSeconds"/>; then every device disconnects and the report is written.
/// </summary>
public sealed class FleetScenario(FleetOptions options, TimeProvider time, TextWriter output)
{
    /// <summary>How long to wait, once publishing stops, for the verifier to receive what was acknowledged.</summary>
    static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);

    /// <summary>What the devices have done so far: for progress, and for tests that act on the fleet while it runs.</summary>
    public FleetCounters Counters { get; } = new(time);

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var report = await RunReportAsync(cancellationToken).ConfigureAwait(false);
        if (!options.ChildMode) report.WriteText(output);
        if (options.JsonPath is not null) report.WriteJson(options.JsonPath);
        return report.Clean ? 0 : 1;
    }

    public async Task<FleetReport> RunReportAsync(CancellationToken cancellationToken)
    {
        var (first, count) = options.LocalDevices;
        var factory = new FleetConnectionFactory(options);
        var rate = options.RampSeconds > 0 ? Math.Min(options.ConnectRate, count / options.RampSeconds) : options.ConnectRate;
        var bucket = new TokenBucket(Math.Max(rate, 0.01), Math.Max(1, rate / 10), time);
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(options.ReconnectMinSeconds), TimeSpan.FromSeconds(options.ReconnectMaxSeconds));
        var payload = new TelemetryPayload(options.PayloadSize, options.PayloadTemplate);
        var counters = Counters;
        var raw = options.UsesRawMode;
        var mode = raw ? "raw" : "mqttnet";
        var sources = options.WebSocketUrl is null ? new SourceAddressPlan(options.SourceBase, options.PerSource, count) : new SourceAddressPlan(null, options.PerSource, count);
        var broker = options.WebSocketUrl ?? string.Join(",", options.Brokers.Select(b => $"{b.Host}:{b.Port.ToString(CultureInfo.InvariantCulture)}"));
        if (!options.ChildMode)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fleet: devices {first}..{first + count - 1} ({count}, shard {options.Shard}) -> {broker} ({factory.Transport}, MQTT {(options.Mqtt5 ? "5" : "3.1.1")}, {mode} devices{(raw || options.Mode != FleetDeviceMode.Auto ? "" : $": raw mode not used, {options.RawModeGap}")}), connect <= {rate:F0}/s, every {options.IntervalSeconds} s ± {options.JitterSeconds} s, QoS {options.Qos}, <= {options.DurationSeconds} s"));
        }

        var started = time.GetTimestamp();
        var startedUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        run.CancelAfter(TimeSpan.FromSeconds(options.DurationSeconds));

        FleetVerifier? verifier = null;
        if (options.Verify)
        {
            verifier = new FleetVerifier(options, factory, first, count, time);
            try
            {
                await verifier.StartAsync(run.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
            {
                counters.Failures.Add($"verifier: {e.Message}");
                await verifier.DisposeAsync().ConfigureAwait(false);
                verifier = null;
            }
        }

        var rawFleet = raw ? new RawFleet(options, counters, bucket, backoff, payload, sources, time) : null;
        var devices = new FleetDevice[raw ? 0 : count];
        for (var i = 0; i < devices.Length; i++)
            devices[i] = new FleetDevice(first + i, options, factory, bucket, backoff, payload, counters, sources.For(i), time);

        var churn = options.ChurnRate > 0
            ? new ConnectionChurn(new IPEndPoint(IPAddress.Parse(options.Host), options.Port), options.ChurnRate, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds),
                string.Create(CultureInfo.InvariantCulture, $"churn-{Environment.ProcessId}-{options.Shard.Index}-"), time)
            : null;
        var churning = churn is null ? Task.CompletedTask : Task.Run(() => churn.RunAsync(run.Token), CancellationToken.None);

        using var progressStop = new CancellationTokenSource();
        var progress = options.Progress || options.ChildMode
            ? ProgressAsync(counters, verifier, started, count, progressStop.Token)
            : Task.CompletedTask;

        if (rawFleet is not null) await rawFleet.RunAsync(run.Token).ConfigureAwait(false);
        else await Task.WhenAll(devices.Select(d => Task.Run(() => d.RunAsync(run.Token), CancellationToken.None))).ConfigureAwait(false);
        await run.CancelAsync().ConfigureAwait(false);
        await churning.ConfigureAwait(false);
        var seconds = time.GetElapsedTime(started).TotalSeconds;
        var endedUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds();

        var sent = rawFleet?.Sent ?? devices.Select(d => d.Sent).ToArray();
        long lost = 0, received = 0, duplicates = 0;
        if (verifier is not null)
        {
            var total = sent.Sum();
            var drainUntil = time.GetTimestamp() + (long)(DrainTimeout.TotalSeconds * time.TimestampFrequency);
            while (verifier.Received < total && time.GetTimestamp() < drainUntil && !cancellationToken.IsCancellationRequested)
                await Task.Delay(TimeSpan.FromMilliseconds(20), time, CancellationToken.None).ConfigureAwait(false);
            received = verifier.Received;
            duplicates = verifier.Duplicates;
            lost = verifier.Lost(sent);
            await verifier.DisposeAsync().ConfigureAwait(false);
        }

        await progressStop.CancelAsync().ConfigureAwait(false);
        await progress.ConfigureAwait(false);

        var (connectHistogram, ackHistogram) = counters.ReadHistograms(() => (FleetHistogram.From(counters.ConnectLatency), FleetHistogram.From(counters.PublishAckLatency)));
        var e2e = verifier?.EndToEnd ?? LatencyPercentiles.CreateHistogram();
        var failures = new Dictionary<string, int>(counters.Failures.Snapshot());
        if (churn is not null)
            foreach (var (reason, n) in churn.Failures.Snapshot()) failures[reason] = failures.GetValueOrDefault(reason) + n;
        return new FleetReport(
            "fleet",
            broker,
            factory.Transport,
            options.Mqtt5 ? "5" : "3.1.1",
            options.Shard.ToString(),
            1,
            count,
            options.Qos,
            Math.Round(seconds, 2),
            counters.ConnectAttempts,
            counters.EverConnected,
            counters.ConnectFailures,
            counters.Disconnects,
            counters.Reconnects,
            counters.Redirects,
            counters.Published,
            counters.PublishFailures,
            counters.Commands,
            options.Verify,
            received,
            lost,
            duplicates,
            LatencyPercentiles.From(connectHistogram.ToHistogram()),
            LatencyPercentiles.From(ackHistogram.ToHistogram()),
            LatencyPercentiles.From(e2e),
            connectHistogram,
            ackHistogram,
            FleetHistogram.From(e2e),
            failures,
            cancellationToken.IsCancellationRequested,
            churn?.Attempts ?? 0,
            churn?.Connected ?? 0,
            churn is null ? null : FleetHistogram.From(churn.ReadLatency()),
            mode,
            startedUnixMs,
            endedUnixMs,
            counters.LastFirstConnectUnixMs);
    }

    async Task ProgressAsync(FleetCounters counters, FleetVerifier? verifier, long started, int devices, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        var previous = default(FleetProgress);
        var last = started;
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                var now = time.GetTimestamp();
                var sample = FleetProgress.From(counters, verifier?.Received ?? 0);
                if (options.ChildMode) output.WriteLine(sample.ToLine());
                else output.WriteLine(sample.Describe(previous, Math.Max(0.001, (now - last) / (double)time.TimestampFrequency), time.GetElapsedTime(started).TotalSeconds, devices));
                previous = sample;
                last = now;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
