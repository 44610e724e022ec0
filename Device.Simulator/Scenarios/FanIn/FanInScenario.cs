using System.Globalization;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// <see cref="SimulatorOptions.Publishers"/> publishers send to <c>bench/&lt;id&gt;</c> and one subscriber on
/// <c>bench/#</c> receives everything, in a closed loop of at most <see cref="SimulatorOptions.Inflight"/> messages on
/// their way, or with each publisher at most <see cref="SimulatorOptions.Ahead"/> messages past the newest of its own
/// the subscriber has had (<see cref="FanInWindows"/>). Ends when <see cref="SimulatorOptions.Messages"/> have been published or
/// <see cref="SimulatorOptions.DurationSeconds"/> have passed, then waits for what is still on its way.
/// </summary>
public sealed class FanInScenario(SimulatorOptions options, TimeProvider time, TextWriter output)
{
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
        var loop = options.Ahead > 0 ? $"<= {options.Ahead} ahead per publisher" : $"<= {options.Inflight} in flight";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fanin: {options.Publishers} publishers on {broker} -> {FanInSubscriber.Filter} ({session} session) on {options.SubscriberEndPoint}, QoS {options.Qos}, {options.PayloadBytes} B, {loop}, <= {options.Messages} messages, <= {options.DurationSeconds} s"));

        var connector = new MqttConnector(broker, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        var keepAlive = (ushort)options.KeepAliveSeconds;
        var failures = new ConcurrentFailures();
        using var windows = options.Ahead > 0
            ? FanInWindows.Ahead(options.Publishers, options.Ahead, options.Messages)
            : FanInWindows.Shared(options.Publishers, options.Inflight, options.Messages);
        using var run = new PublishRun(options, time, output, cancellationToken);

        var subscriberConnector = new MqttConnector(options.SubscriberEndPoint, TimeSpan.FromSeconds(options.ConnectTimeoutSeconds));
        var subscriberResult = await subscriberConnector.ConnectAsync(null, MqttWire.Connect("fanin-sub", keepAlive, cleanSession: !options.PersistentSubscriber), cancellationToken).ConfigureAwait(false);
        if (subscriberResult.Socket is null)
        {
            failures.Add($"subscriber: {subscriberResult.Failure}");
            return Empty(session, failures);
        }

        var subscriber = new FanInSubscriber(subscriberResult.Socket, options.Publishers, options.PayloadBytes, windows, time);
        var subscriberLoop = Task.Run(() => subscriber.ReceiveLoopAsync(run.Abort), CancellationToken.None);
        await subscriber.SubscribeAsync(options.Qos, cancellationToken).ConfigureAwait(false);
        var granted = await subscriber.SubscribedTask.WaitAsync(TimeSpan.FromSeconds(options.ConnectTimeoutSeconds), cancellationToken).ConfigureAwait(false);
        if (granted > 2)
        {
            failures.Add($"subscriber: suback {granted}");
            await run.AbortAsync().ConfigureAwait(false);
            await subscriberLoop.ConfigureAwait(false);
            subscriber.Disconnect();
            return Empty(session, failures);
        }

        // A batch takes at most its share of the credits, so that one fast publisher does not starve the others.
        var maxBatch = Math.Clamp(options.Ahead > 0 ? options.Ahead : options.Inflight / options.Publishers, 1, 64);
        var publishers = await run.ConnectPublishersAsync(connector, "fanin-pub-", options.Publishers, keepAlive, maxBatch, failures).ConfigureAwait(false);
        output.WriteLine($"connected: {publishers.Length} publishers, subscriber granted QoS {granted}");

        // With windows per publisher a lost message never arrives: once each publisher's last message is in (or passed), nothing more is coming.
        var arrivals = new Arrivals(
            "received",
            () => subscriber.Received,
            published => subscriber.Received >= published || (windows.PerPublisher && publishers.All(p => windows.Newest(p.Id) >= p.Sent - 1)),
            _ => true);
        var (stalled, publishSeconds, totalSeconds, sent, ackLatency) =
            await run.RunAsync(publishers, options.Publishers, windows.For, arrivals, [subscriberLoop], subscriber.Disconnect).ConfigureAwait(false);

        var tracker = subscriber.Tracker;
        var receivedTotal = tracker.Distinct;
        return new FanInReport(
            "fanin",
            broker.ToString(),
            options.Publishers,
            options.Qos,
            options.PayloadBytes,
            options.Ahead > 0 ? 0 : options.Inflight,
            options.Ahead,
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
        "fanin", options.BrokerEndPoint.ToString(), options.Publishers, options.Qos, options.PayloadBytes,
        options.Ahead > 0 ? 0 : options.Inflight, options.Ahead, session,
        failures.Total, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        LatencyPercentiles.From(LatencyPercentiles.CreateHistogram()), LatencyPercentiles.From(LatencyPercentiles.CreateHistogram()),
        false, false, failures.Snapshot());
}
