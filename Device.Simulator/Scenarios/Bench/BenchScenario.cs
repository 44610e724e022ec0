using System.Globalization;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Scenarios.Bench;

/// <summary>
/// Runs the fanout, p2p, shared and latency scenarios (<see cref="BenchTopology"/>) with the fan-in publishers and
/// payload: closed loop (at most <see cref="SimulatorOptions.Inflight"/> messages not yet at every subscriber that
/// should get them) or, for latency, open loop at <see cref="SimulatorOptions.Rate"/> msg/s. Ends when
/// <see cref="SimulatorOptions.Messages"/> have been published or <see cref="SimulatorOptions.DurationSeconds"/> have
/// passed, then waits for what is still on its way.
/// </summary>
public sealed class BenchScenario(SimulatorOptions options, TimeProvider time, TextWriter output)
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

    public async Task<BenchReport> RunReportAsync(CancellationToken cancellationToken)
    {
        var topology = BenchTopology.From(options);
        var broker = options.BrokerEndPoint;
        var loop = topology.OpenLoop ? $"open loop at {options.Rate} msg/s" : $"<= {options.Inflight} in flight";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{topology.Scenario}: {topology.Publishers} publishers -> {topology.Subscribers} subscribers ({topology.Filter(0)}) on {broker}, QoS {options.Qos}, {options.PayloadBytes} B, {loop}, <= {options.Messages} messages, <= {options.DurationSeconds} s"));

        var connector = new MqttConnector(broker, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        var keepAlive = (ushort)options.KeepAliveSeconds;
        var failures = new ConcurrentFailures();
        using var flow = new FanInFlow(topology.OpenLoop ? 0 : options.Inflight, options.Messages);
        var completion = new DeliveryCompletion(topology.Publishers, options.Inflight, topology.DeliveriesPerMessage);
        var deliveries = new BenchDeliveries(flow, completion, topology.OpenLoop);
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var stopPublishing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        // Many subscribers each get a share of the traffic: smaller buffers keep a 1,000-subscriber run's memory modest.
        var bufferBytes = Math.Max(topology.Subscribers > 50 ? 64 * 1024 : 1024 * 1024, 2 * (options.PayloadBytes + 1024));
        var subscriberConnects = Enumerable.Range(0, topology.Subscribers).Select(async i =>
        {
            var result = await connector.ConnectAsync(null, MqttWire.Connect($"{topology.Scenario}-sub-{i}", keepAlive), cancellationToken).ConfigureAwait(false);
            if (result.Socket is null) failures.Add($"subscriber: {result.Failure}");
            return result.Socket is null ? null : new BenchSubscriber(result.Socket, topology.Publishers, bufferBytes, deliveries, time);
        });
        var connected = await Task.WhenAll(subscriberConnects).ConfigureAwait(false);
        var subscribers = connected.OfType<BenchSubscriber>().ToArray();
        var subscriberLoops = subscribers.Select(s => Task.Run(() => s.ReceiveLoopAsync(abort.Token), CancellationToken.None)).ToArray();
        for (var i = 0; i < connected.Length; i++)
        {
            if (connected[i] is { } subscriber) await subscriber.SubscribeAsync(topology.Filter(i), options.Qos, cancellationToken).ConfigureAwait(false);
        }

        foreach (var subscriber in subscribers)
        {
            var granted = await subscriber.SubscribedTask.WaitAsync(TimeSpan.FromSeconds(options.ConnectTimeoutSeconds), cancellationToken).ConfigureAwait(false);
            if (granted > 2) failures.Add($"subscriber: suback {granted}");
        }

        var maxBatch = topology.OpenLoop ? 64 : Math.Clamp(options.Inflight / topology.Publishers, 1, 64);
        var publisherConnects = Enumerable.Range(0, topology.Publishers).Select(async i =>
        {
            var result = await connector.ConnectAsync(null, MqttWire.Connect($"{topology.Scenario}-pub-{i}", keepAlive), cancellationToken).ConfigureAwait(false);
            if (result.Socket is null) failures.Add($"publisher: {result.Failure}");
            return result.Socket is null ? null : new FanInPublisher(result.Socket, i, options.Qos, options.PayloadBytes, maxBatch, time);
        });
        var publishers = (await Task.WhenAll(publisherConnects).ConfigureAwait(false)).OfType<FanInPublisher>().ToArray();
        output.WriteLine($"connected: {publishers.Length} publishers, {subscribers.Length} subscribers, failures {failures.Total}");

        var start = time.GetTimestamp();
        var receiveLoops = publishers.Select(p => Task.Run(() => p.ReceiveLoopAsync(abort.Token), CancellationToken.None)).ToArray();
        var sendLoops = publishers.Select(p => Task.Run(() => p.SendLoopAsync(flow, stopPublishing.Token, abort.Token), CancellationToken.None)).ToArray();
        var pacer = topology.OpenLoop ? Task.Run(() => OpenLoopPacer.RunAsync(flow, options.Rate, time, stopPublishing.Token), CancellationToken.None) : Task.CompletedTask;
        var sending = Task.WhenAll(sendLoops);

        var stalled = false;
        var publishSeconds = 0.0;
        var lastDelivered = 0L;
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
            var delivered = deliveries.Delivered;
            if (delivered != lastDelivered)
            {
                lastProgress = time.GetTimestamp();
                lastDelivered = delivered;
            }

            if (time.GetElapsedTime(lastReport) >= TimeSpan.FromSeconds(1))
            {
                lastReport = time.GetTimestamp();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{time.GetElapsedTime(start).TotalSeconds,5:F0}s] published {published}, acked {publishers.Sum(p => p.Acked)}, delivered {delivered}"));
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
                var expected = BenchReport.Expected(published, topology.DeliveriesPerMessage);
                var ackedAll = options.Qos == 0 || publishers.Sum(p => p.Acked) >= published;
                if ((deliveries.Delivered >= expected && ackedAll) || time.GetUtcNow() >= drainDeadline) break;
            }

            // An open loop that publishes nothing for a while is idle, not stalled, so only waiting messages count.
            if (time.GetElapsedTime(lastProgress) >= stallTimeout && deliveries.Delivered < BenchReport.Expected(published, topology.DeliveriesPerMessage))
            {
                stalled = true;
                break;
            }
        }

        await stopPublishing.CancelAsync().ConfigureAwait(false);
        await sending.ConfigureAwait(false);
        await pacer.ConfigureAwait(false);
        if (publishSeconds == 0) publishSeconds = time.GetElapsedTime(start).TotalSeconds;
        var totalSeconds = time.GetElapsedTime(start).TotalSeconds;
        await abort.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(receiveLoops.Concat(subscriberLoops)).ConfigureAwait(false);
        foreach (var publisher in publishers) publisher.Disconnect();
        foreach (var subscriber in subscribers) subscriber.Disconnect();

        var sent = new long[topology.Publishers];
        var ackLatency = LatencyPercentiles.CreateHistogram();
        foreach (var publisher in publishers)
        {
            ackLatency.Add(publisher.AckLatency);
            sent[publisher.Id] = publisher.Sent;
        }

        var endToEnd = LatencyPercentiles.CreateHistogram();
        foreach (var subscriber in subscribers) endToEnd.Add(subscriber.EndToEnd);

        long lost = 0, duplicates = 0, foreign = 0;
        var subscribersWithLoss = 0;
        foreach (var subscriber in subscribers) foreign += subscriber.Tracker.Foreign;
        if (topology.SharedGroup)
        {
            var tally = GroupTally.From(subscribers.Select(s => s.Tracker).ToArray(), sent);
            lost = tally.Lost;
            duplicates = tally.Duplicates;
        }
        else
        {
            // A subscriber that never connected lost everything it should have had.
            for (var i = 0; i < connected.Length; i++)
            {
                var expectedSent = sent.Select((count, p) => topology.Expects(i, p) ? count : 0).ToArray();
                var missing = connected[i] is { } subscriber ? subscriber.Tracker.Lost(expectedSent) : expectedSent.Sum();
                if (connected[i] is { } s) duplicates += s.Tracker.Duplicates;
                lost += missing;
                if (missing > 0) subscribersWithLoss++;
            }
        }

        var publishedTotal = sent.Sum();
        var steady = SteadyStateRate.PerSecond(deliveries.Marks, deliveries.Delivered, time.TimestampFrequency);
        return new BenchReport(
            topology.Scenario,
            broker.ToString(),
            topology.Publishers,
            topology.Subscribers,
            options.Qos,
            options.PayloadBytes,
            topology.OpenLoop ? 0 : options.Inflight,
            topology.OpenLoop ? options.Rate : 0,
            failures.Total,
            publishedTotal,
            publishers.Sum(p => p.Acked),
            deliveries.Delivered,
            BenchReport.Expected(publishedTotal, topology.DeliveriesPerMessage),
            lost,
            duplicates,
            foreign,
            subscribersWithLoss,
            Math.Round(publishSeconds, 3),
            Math.Round(totalSeconds, 3),
            Math.Round(steady, 1),
            Math.Round(BenchReport.MessagesPerSecond(steady, topology.DeliveriesPerMessage), 1),
            Math.Round(publishSeconds > 0 ? deliveries.Delivered / publishSeconds : 0, 1),
            LatencyPercentiles.From(ackLatency),
            LatencyMicros.From(endToEnd),
            stalled,
            cancellationToken.IsCancellationRequested,
            failures.Snapshot());
    }
}
