using System.Globalization;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.Soak;

/// <summary>
/// The client side of a soak: <see cref="SimulatorOptions.Publishers"/> persistent publishers (even ids QoS 1, odd ids
/// QoS 2) at <see cref="SimulatorOptions.Rate"/> msg/s in all, each with at most <see cref="SimulatorOptions.Inflight"/>
/// unacknowledged, one persistent subscriber on <c>soak/#</c>, short-lived connections at
/// <see cref="SimulatorOptions.ChurnRate"/> per second, and a client connection reset every
/// <see cref="SimulatorOptions.ClientKillEverySeconds"/>. Every client connects again after any loss of its connection
/// (the broker killed and restarted by the script that runs this, or a client kill), so the run rides through broker
/// restarts. After <see cref="SimulatorOptions.DurationSeconds"/> it stops publishing, waits (bounded) until every client
/// is connected again, every publish is acknowledged and every acknowledged message has arrived, and reports what did not.
/// </summary>
public sealed class SoakScenario(SimulatorOptions options, TimeProvider time, TextWriter output)
{
    /// <summary>How long, after publishing stops, to wait for acknowledgements and deliveries still owed (a broker restart included).</summary>
    static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(60);

    static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(10);

    readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the subscriber has subscribed and the publishers are connected and publishing (or the run gave up before).</summary>
    public Task Started => _started.Task;

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var report = await RunReportAsync(cancellationToken).ConfigureAwait(false);
        report.WriteText(output);
        if (options.JsonPath is not null) report.WriteJson(options.JsonPath);
        return report.Clean ? 0 : 1;
    }

    public async Task<SoakReport> RunReportAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await RunCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _started.TrySetResult();
        }
    }

    async Task<SoakReport> RunCoreAsync(CancellationToken cancellationToken)
    {
        var broker = options.BrokerEndPoint;
        var connectTimeout = TimeSpan.FromSeconds(options.ConnectTimeoutSeconds);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"soak: {options.Publishers} persistent publishers (QoS 1 and 2) at {options.Rate} msg/s, <= {options.Inflight} unacknowledged each, -> {SoakSubscriber.Filter} on {broker}; churn {options.ChurnRate}/s; a client reset every {options.ClientKillEverySeconds} s; {options.DurationSeconds} s"));

        var counters = new SoakCounters();
        using var clients = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var load = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var started = time.GetTimestamp();

        var subscriber = new SoakSubscriber(options.Publishers, broker, connectTimeout, counters, time);
        var subscriberTask = Task.Run(() => subscriber.RunAsync(clients.Token), CancellationToken.None);
        var granted = await WaitSubscribedAsync(subscriber, cancellationToken).ConfigureAwait(false);
        if (granted is not (1 or 2))
        {
            counters.Failure(granted is null ? "subscriber: no SUBACK" : $"subscriber: SUBACK {granted}");
            await clients.CancelAsync().ConfigureAwait(false);
            await subscriberTask.ConfigureAwait(false);
            return Report([], subscriber, counters, null, 0, 0, cancellationToken.IsCancellationRequested);
        }

        var publishers = Enumerable.Range(0, options.Publishers)
            .Select(i => new SoakPublisher(i, i % 2 == 0 ? 1 : 2, options.PayloadBytes, options.Inflight, broker, connectTimeout, counters, time))
            .ToArray();
        var sessions = publishers.Select(p => Task.Run(() => p.RunAsync(clients.Token), CancellationToken.None)).ToArray();
        // The pacers start when every publisher is connected (or after three connect timeouts, to run with those that are).
        var connectedBy = time.GetTimestamp() + (long)(3 * options.ConnectTimeoutSeconds * time.TimestampFrequency);
        while (!publishers.All(p => p.Ready) && time.GetTimestamp() < connectedBy && !cancellationToken.IsCancellationRequested)
            await DelayAsync(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
        output.WriteLine($"connected: {publishers.Count(p => p.Ready)} of {publishers.Length} publishers, subscriber granted QoS {granted}");
        var period = TimeSpan.FromSeconds((double)options.Publishers / options.Rate);
        var pacers = publishers.Select(p => Task.Run(() => PaceAsync(p, period, load.Token), CancellationToken.None)).ToArray();
        var killer = options.ClientKillEverySeconds > 0
            ? Task.Run(() => KillClientsAsync(publishers, subscriber, counters, load.Token), CancellationToken.None)
            : Task.CompletedTask;
        var churn = options.ChurnRate > 0
            ? new ConnectionChurn(broker, options.ChurnRate, connectTimeout, string.Create(CultureInfo.InvariantCulture, $"soak-churn-{Environment.ProcessId}-"), time)
            : null;
        var churning = churn is null ? Task.CompletedTask : Task.Run(() => churn.RunAsync(load.Token), CancellationToken.None);
        _started.TrySetResult();

        var duration = TimeSpan.FromSeconds(options.DurationSeconds);
        var lastProgress = started;
        while (!cancellationToken.IsCancellationRequested && time.GetElapsedTime(started) < duration)
        {
            await DelayAsync(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
            if (time.GetElapsedTime(lastProgress) >= ProgressEvery)
            {
                lastProgress = time.GetTimestamp();
                Progress(publishers, subscriber, counters, churn, started);
            }
        }

        await load.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(pacers.Append(killer).Append(churning)).ConfigureAwait(false);
        var publishSeconds = time.GetElapsedTime(started).TotalSeconds;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"publishing stopped after {publishSeconds:F0} s; waiting up to {DrainTimeout.TotalSeconds:F0} s for what is owed"));

        var drainUntil = time.GetTimestamp() + (long)(DrainTimeout.TotalSeconds * time.TimestampFrequency);
        while (!cancellationToken.IsCancellationRequested && time.GetTimestamp() < drainUntil)
        {
            // Every client back online (a broker killed near the end included), nothing unacknowledged, everything acknowledged in.
            if (subscriber.Ready && publishers.All(p => p.Ready && p.Inflight == 0) && AcknowledgedLost(publishers, subscriber) == 0) break;
            await DelayAsync(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
        }

        Progress(publishers, subscriber, counters, churn, started);
        await clients.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(sessions.Append(subscriberTask)).ConfigureAwait(false);
        return Report(publishers, subscriber, counters, churn, options.Rate, time.GetElapsedTime(started).TotalSeconds, cancellationToken.IsCancellationRequested);
    }

    async Task<byte?> WaitSubscribedAsync(SoakSubscriber subscriber, CancellationToken cancellationToken)
    {
        try
        {
            // The broker may still be starting: the subscriber keeps trying within this time.
            return await subscriber.Subscribed.WaitAsync(TimeSpan.FromSeconds(3 * options.ConnectTimeoutSeconds), time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            return null;
        }
    }

    async Task PaceAsync(SoakPublisher publisher, TimeSpan period, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(period, time);
        try
        {
            // A tick that finds the publisher offline or its window full is skipped, not made up later.
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
                await publisher.TryPublishNextAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    async Task KillClientsAsync(SoakPublisher[] publishers, SoakSubscriber subscriber, SoakCounters counters, CancellationToken stop)
    {
        var every = TimeSpan.FromSeconds(options.ClientKillEverySeconds);
        for (var k = 0; !stop.IsCancellationRequested; k++)
        {
            await DelayAsync(every, stop).ConfigureAwait(false);
            if (stop.IsCancellationRequested) return;
            // Every fifth reset hits the subscriber, the others a publisher in turn.
            PersistentClient target = k % 5 == 4 ? subscriber : publishers[(k - k / 5) % publishers.Length];
            if (target.Kill())
            {
                counters.ClientKilled();
                output.WriteLine($"client reset: {target.ClientId}");
            }
        }
    }

    static long AcknowledgedLost(SoakPublisher[] publishers, SoakSubscriber subscriber, List<string>? samples = null)
    {
        long lost = 0;
        foreach (var publisher in publishers)
        {
            var published = publisher.Published;
            for (long s = 0; s < published; s++)
            {
                if (!publisher.WasAcknowledged(s) || subscriber.HasReceived(publisher.Id, s)) continue;
                lost++;
                if (samples is not null && samples.Count < SoakSubscriber.SampleCount)
                    samples.Add(string.Create(CultureInfo.InvariantCulture, $"{publisher.Id}/{s} QoS {publisher.Qos}"));
            }
        }

        return lost;
    }

    void Progress(SoakPublisher[] publishers, SoakSubscriber subscriber, SoakCounters counters, ConnectionChurn? churn, long started) =>
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"[{time.GetElapsedTime(started).TotalSeconds,5:F0}s] published {publishers.Sum(p => p.Published)}, acknowledged {publishers.Sum(p => p.Acknowledged)}, received {subscriber.Received}, unacknowledged {publishers.Sum(p => p.Inflight)}, reconnects {counters.Reconnects}, connect failures {counters.ConnectFailures}, churn {churn?.Connected ?? 0}/{churn?.Attempts ?? 0}"));

    SoakReport Report(SoakPublisher[] publishers, SoakSubscriber subscriber, SoakCounters counters, ConnectionChurn? churn, int rate, double seconds, bool cancelled)
    {
        var failures = new Dictionary<string, int>(counters.Failures.Snapshot());
        if (churn is not null)
            foreach (var (reason, n) in churn.Failures.Snapshot()) failures[reason] = failures.GetValueOrDefault(reason) + n;
        var lostSamples = new List<string>();
        return new SoakReport(
            "soak",
            options.BrokerEndPoint.ToString(),
            options.Publishers,
            publishers.Count(p => p.Qos == 1),
            publishers.Count(p => p.Qos == 2),
            rate,
            Math.Round(seconds, 1),
            publishers.Sum(p => p.Published),
            publishers.Sum(p => p.Acknowledged),
            publishers.Sum(p => (long)p.Inflight),
            [.. publishers.SelectMany(p => p.DescribeInflight()).Take(SoakSubscriber.SampleCount)],
            subscriber.Received,
            AcknowledgedLost(publishers, subscriber, lostSamples),
            AcknowledgedLost([.. publishers.Where(p => p.Qos == 1)], subscriber),
            AcknowledgedLost([.. publishers.Where(p => p.Qos == 2)], subscriber),
            lostSamples,
            subscriber.Duplicates(1),
            subscriber.Duplicates(2),
            subscriber.DuplicateSamples,
            subscriber.PacketIdsReused,
            counters.ConnectAttempts,
            counters.ConnectFailures,
            counters.ConnectionsLost,
            counters.Reconnects,
            counters.SessionsLost,
            counters.ClientKills,
            churn?.Attempts ?? 0,
            churn?.Connected ?? 0,
            LatencyPercentiles.From(churn?.ReadLatency() ?? LatencyPercentiles.CreateHistogram()),
            LatencyPercentiles.From(subscriber.EndToEnd()),
            failures,
            cancelled);
    }

    async Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
