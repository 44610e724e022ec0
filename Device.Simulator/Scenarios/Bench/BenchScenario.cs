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
            $"{topology.Scenario}: {topology.Publishers} publishers on {broker} -> {topology.Subscribers} subscribers ({topology.Filter(0)}) on {options.SubscriberEndPoint}, QoS {options.Qos}, {options.PayloadBytes} B, {loop}, <= {options.Messages} messages, <= {options.DurationSeconds} s"));

        var connector = new MqttConnector(broker, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        var keepAlive = (ushort)options.KeepAliveSeconds;
        var failures = new ConcurrentFailures();
        using var flow = new FanInFlow(topology.OpenLoop ? 0 : options.Inflight, options.Messages);
        var completion = new DeliveryCompletion(topology.Publishers, options.Inflight, topology.DeliveriesPerMessage);
        var deliveries = new BenchDeliveries(flow, completion, topology.OpenLoop);
        using var run = new PublishRun(options, time, output, cancellationToken);

        // Many subscribers each get a share of the traffic: smaller buffers keep a 1,000-subscriber run's memory modest.
        var bufferBytes = Math.Max(topology.Subscribers > 50 ? 64 * 1024 : 1024 * 1024, 2 * (options.PayloadBytes + 1024));
        var subscriberConnector = new MqttConnector(options.SubscriberEndPoint, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        var subscriberConnects = Enumerable.Range(0, topology.Subscribers).Select(async i =>
        {
            var result = await subscriberConnector.ConnectAsync(null, MqttWire.Connect($"{topology.Scenario}-sub-{i}", keepAlive), cancellationToken).ConfigureAwait(false);
            if (result.Socket is null) failures.Add($"subscriber: {result.Failure}");
            return result.Socket is null ? null : new BenchSubscriber(result.Socket, topology.Publishers, bufferBytes, deliveries, time);
        });
        var connected = await Task.WhenAll(subscriberConnects).ConfigureAwait(false);
        var subscribers = connected.OfType<BenchSubscriber>().ToArray();
        var subscriberLoops = subscribers.Select(s => Task.Run(() => s.ReceiveLoopAsync(run.Abort), CancellationToken.None)).ToArray();
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
        var publishers = await run.ConnectPublishersAsync(connector, $"{topology.Scenario}-pub-", topology.Publishers, keepAlive, maxBatch, failures).ConfigureAwait(false);
        output.WriteLine($"connected: {publishers.Length} publishers, {subscribers.Length} subscribers, failures {failures.Total}");

        var arrivals = new Arrivals(
            "delivered",
            () => deliveries.Delivered,
            published => deliveries.Delivered >= BenchReport.Expected(published, topology.DeliveriesPerMessage),
            // An open loop that publishes nothing for a while is idle, not stalled, so only waiting messages count.
            published => deliveries.Delivered < BenchReport.Expected(published, topology.DeliveriesPerMessage));
        Func<Task>? pacer = topology.OpenLoop ? () => Task.Run(() => OpenLoopPacer.RunAsync(flow, options.Rate, time, run.StopPublishing), CancellationToken.None) : null;
        var (stalled, publishSeconds, totalSeconds, sent, ackLatency) = await run.RunAsync(
            publishers, topology.Publishers, _ => flow, arrivals, subscriberLoops,
            () => { foreach (var subscriber in subscribers) subscriber.Disconnect(); }, pacer).ConfigureAwait(false);

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
