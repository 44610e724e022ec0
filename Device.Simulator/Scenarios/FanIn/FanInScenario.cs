using System.Globalization;
using System.Net.Sockets;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// <see cref="SimulatorOptions.Publishers"/> publishers send to <c>bench/&lt;id&gt;</c> and one subscriber on
/// <c>bench/#</c> receives everything, in a closed loop of at most <see cref="SimulatorOptions.Inflight"/> messages on
/// their way. Ends when <see cref="SimulatorOptions.Messages"/> have been published or
/// <see cref="SimulatorOptions.DurationSeconds"/> have passed, then waits for what is still on its way.
/// </summary>
public sealed class FanInScenario(SimulatorOptions options, TimeProvider time, TextWriter output)
{
    /// <summary>How long to wait, once publishing stops, for messages and acks still on their way.</summary>
    static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var report = await RunReportAsync(cancellationToken).ConfigureAwait(false);
        report.WriteText(output);
        if (options.JsonPath is not null) report.WriteJson(options.JsonPath);
        return report.Clean ? 0 : 1;
    }

    public async Task<FanInReport> RunReportAsync(CancellationToken cancellationToken)
    {
        var broker = options.BrokerEndPoint;
        var session = options.PersistentSubscriber ? "persistent" : "clean";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fanin: {options.Publishers} publishers -> {FanInSubscriber.Filter} ({session} session) on {broker}, QoS {options.Qos}, {options.PayloadBytes} B, <= {options.Inflight} in flight, <= {options.Messages} messages, <= {options.DurationSeconds} s"));

        var connector = new MqttConnector(broker, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        var keepAlive = (ushort)options.KeepAliveSeconds;
        var failures = new ConcurrentFailures();
        using var flow = new FanInFlow(options.Inflight, options.Messages);
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var stopPublishing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        var subscriberResult = await connector.ConnectAsync(null, MqttWire.Connect("fanin-sub", keepAlive, cleanSession: !options.PersistentSubscriber), cancellationToken).ConfigureAwait(false);
        if (subscriberResult.Socket is null)
        {
            failures.Add($"subscriber: {subscriberResult.Failure}");
            return Empty(session, failures);
        }

        var subscriber = new FanInSubscriber(subscriberResult.Socket, options.Publishers, options.PayloadBytes, flow, time);
        var subscriberLoop = Task.Run(() => subscriber.ReceiveLoopAsync(abort.Token), CancellationToken.None);
        await subscriber.SubscribeAsync(options.Qos, cancellationToken).ConfigureAwait(false);
        var granted = await subscriber.SubscribedTask.WaitAsync(TimeSpan.FromSeconds(options.ConnectTimeoutSeconds), cancellationToken).ConfigureAwait(false);
        if (granted > 2)
        {
            failures.Add($"subscriber: suback {granted}");
            await abort.CancelAsync().ConfigureAwait(false);
            await subscriberLoop.ConfigureAwait(false);
            subscriber.Disconnect();
            return Empty(session, failures);
        }

        // A batch takes at most its share of the credits, so that one fast publisher does not starve the others.
        var maxBatch = Math.Clamp(options.Inflight / options.Publishers, 1, 64);
        var connects = Enumerable.Range(0, options.Publishers).Select(async i =>
        {
            var result = await connector.ConnectAsync(null, MqttWire.Connect($"fanin-pub-{i}", keepAlive), cancellationToken).ConfigureAwait(false);
            if (result.Socket is null) failures.Add($"publisher: {result.Failure}");
            return result.Socket is null ? null : new FanInPublisher(result.Socket, i, options.Qos, options.PayloadBytes, maxBatch, time);
        });
        var publishers = (await Task.WhenAll(connects).ConfigureAwait(false)).OfType<FanInPublisher>().ToArray();
        output.WriteLine($"connected: {publishers.Length} publishers, subscriber granted QoS {granted}");

        var start = time.GetTimestamp();
        var receiveLoops = publishers.Select(p => Task.Run(() => p.ReceiveLoopAsync(abort.Token), CancellationToken.None)).ToArray();
        var sendLoops = publishers.Select(p => Task.Run(() => p.SendLoopAsync(flow, stopPublishing.Token, abort.Token), CancellationToken.None)).ToArray();
        var sending = Task.WhenAll(sendLoops);

        var stalled = false;
        var publishSeconds = 0.0;
        var lastReceived = 0L;
        var lastProgress = time.GetTimestamp();
        var lastReport = lastProgress;
        var stallTimeout = TimeSpan.FromSeconds(options.StallTimeoutSeconds);
        var duration = TimeSpan.FromSeconds(options.DurationSeconds);
        DateTimeOffset? drainDeadline = null;
        while (true)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(20), time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            var published = publishers.Sum(p => p.Sent);
            var acked = publishers.Sum(p => p.Acked);
            var received = subscriber.Received;
            if (received != lastReceived)
            {
                lastProgress = time.GetTimestamp();
                lastReceived = received;
            }

            if (time.GetElapsedTime(lastReport) >= TimeSpan.FromSeconds(1))
            {
                lastReport = time.GetTimestamp();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{time.GetElapsedTime(start).TotalSeconds,5:F0}s] published {published}, acked {acked}, received {received}"));
            }

            if (drainDeadline is null && (sending.IsCompleted || time.GetElapsedTime(start) >= duration))
            {
                await stopPublishing.CancelAsync().ConfigureAwait(false);
                await sending.ConfigureAwait(false);
                publishSeconds = time.GetElapsedTime(start).TotalSeconds;
                drainDeadline = time.GetUtcNow() + DrainTimeout;
                continue;
            }

            if (drainDeadline is not null)
            {
                published = publishers.Sum(p => p.Sent);
                var ackedAll = options.Qos == 0 || publishers.Sum(p => p.Acked) >= published;
                if ((subscriber.Received >= published && ackedAll) || time.GetUtcNow() >= drainDeadline) break;
            }

            if (time.GetElapsedTime(lastProgress) >= stallTimeout)
            {
                stalled = true;
                break;
            }
        }

        await stopPublishing.CancelAsync().ConfigureAwait(false);
        await sending.ConfigureAwait(false);
        if (publishSeconds == 0) publishSeconds = time.GetElapsedTime(start).TotalSeconds;
        var totalSeconds = time.GetElapsedTime(start).TotalSeconds;
        await abort.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(receiveLoops.Append(subscriberLoop)).ConfigureAwait(false);
        foreach (var publisher in publishers) publisher.Disconnect();
        subscriber.Disconnect();

        var sent = new long[options.Publishers];
        var ackLatency = LatencyPercentiles.CreateHistogram();
        foreach (var publisher in publishers)
        {
            ackLatency.Add(publisher.AckLatency);
            sent[publisher.Id] = publisher.Sent;
        }

        var tracker = subscriber.Tracker;
        var receivedTotal = tracker.Distinct;
        return new FanInReport(
            "fanin",
            broker.ToString(),
            options.Publishers,
            options.Qos,
            options.PayloadBytes,
            options.Inflight,
            session,
            failures.Total,
            sent.Sum(),
            publishers.Sum(p => p.Acked),
            receivedTotal,
            tracker.Lost(sent),
            tracker.Duplicates,
            tracker.Foreign,
            Math.Round(publishSeconds, 3),
            Math.Round(totalSeconds, 3),
            Math.Round(SteadyStateRate.PerSecond(subscriber.Marks, receivedTotal, time.TimestampFrequency), 1),
            Math.Round(publishSeconds > 0 ? receivedTotal / publishSeconds : 0, 1),
            LatencyPercentiles.From(ackLatency),
            LatencyPercentiles.From(subscriber.EndToEnd),
            stalled,
            cancellationToken.IsCancellationRequested,
            failures.Snapshot());
    }

    FanInReport Empty(string session, ConcurrentFailures failures) => new(
        "fanin", options.BrokerEndPoint.ToString(), options.Publishers, options.Qos, options.PayloadBytes, options.Inflight, session,
        failures.Total, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        LatencyPercentiles.From(LatencyPercentiles.CreateHistogram()), LatencyPercentiles.From(LatencyPercentiles.CreateHistogram()),
        false, false, failures.Snapshot());
}
