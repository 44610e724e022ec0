using System.Globalization;
using HdrHistogram;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>What the subscribers of a run have received, as <see cref="PublishRun"/> watches it.</summary>
/// <param name="Name">What the progress line calls it ("received", "delivered").</param>
/// <param name="Count">Arrivals so far; no change for the stall timeout is a stall.</param>
/// <param name="AllIn">Given the messages published, whether every arrival they should make is in.</param>
/// <param name="Missing">Given the messages published, whether arrivals are still missing (only then is no progress a stall).</param>
public sealed record Arrivals(string Name, Func<long> Count, Func<long, bool> AllIn, Func<long, bool> Missing);

/// <summary>What a <see cref="PublishRun"/> leaves: whether it stalled, how long it took, and what each publisher sent.</summary>
public sealed record PublishOutcome(bool Stalled, double PublishSeconds, double TotalSeconds, long[] Sent, LongHistogram AckLatency);

/// <summary>
/// The publishing side shared by the fan-in and bench scenarios: connect the fan-in publishers, run each against its
/// <see cref="FanInFlow"/> until <see cref="SimulatorOptions.Messages"/> are out or
/// <see cref="SimulatorOptions.DurationSeconds"/> have passed, wait for what is still on its way, stop on a stall,
/// then stop every loop and disconnect.
/// </summary>
public sealed class PublishRun(SimulatorOptions options, TimeProvider time, TextWriter output, CancellationToken cancellationToken) : IDisposable
{
    /// <summary>How long to wait, once publishing stops, for messages and acks still on their way.</summary>
    static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    readonly CancellationTokenSource _abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    readonly CancellationTokenSource _stopPublishing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

    /// <summary>Fires when every loop is to stop; receive loops run until it does.</summary>
    public CancellationToken Abort => _abort.Token;

    /// <summary>Fires when publishing stops.</summary>
    public CancellationToken StopPublishing => _stopPublishing.Token;

    public Task AbortAsync() => _abort.CancelAsync();

    /// <summary>Connects <paramref name="count"/> publishers as <c>PREFIX0</c>, <c>PREFIX1</c>, ...; each one that fails is a failure.</summary>
    public async Task<FanInPublisher[]> ConnectPublishersAsync(MqttConnector connector, string clientIdPrefix, int count, ushort keepAlive, int maxBatch, ConcurrentFailures failures)
    {
        var connects = Enumerable.Range(0, count).Select(async i =>
        {
            var result = await connector.ConnectAsync(null, MqttWire.Connect($"{clientIdPrefix}{i}", keepAlive), cancellationToken).ConfigureAwait(false);
            if (result.Socket is null) failures.Add($"publisher: {result.Failure}");
            return result.Socket is null ? null : new FanInPublisher(result.Socket, i, options.Qos, options.PayloadBytes, maxBatch, time);
        });
        return (await Task.WhenAll(connects).ConfigureAwait(false)).OfType<FanInPublisher>().ToArray();
    }

    /// <summary>
    /// Runs <paramref name="publishers"/> (ids below <paramref name="publisherCount"/>), each on the flow
    /// <paramref name="flowFor"/> gives for its id, and reports progress every second;
    /// then stops the publishers, the pacer, the publishers' and the <paramref name="subscriberLoops"/>, and disconnects
    /// the publishers and then the subscribers.
    /// </summary>
    public async Task<PublishOutcome> RunAsync(
        FanInPublisher[] publishers, int publisherCount, Func<int, FanInFlow> flowFor, Arrivals arrivals,
        IEnumerable<Task> subscriberLoops, Action disconnectSubscribers, Func<Task>? startPacer = null)
    {
        var start = time.GetTimestamp();
        var receiveLoops = publishers.Select(p => Task.Run(() => p.ReceiveLoopAsync(_abort.Token), CancellationToken.None)).ToArray();
        var sendLoops = publishers.Select(p => Task.Run(() => p.SendLoopAsync(flowFor(p.Id), _stopPublishing.Token, _abort.Token), CancellationToken.None)).ToArray();
        var pacer = startPacer is null ? Task.CompletedTask : startPacer();
        var sending = Task.WhenAll(sendLoops);

        var stalled = false;
        var publishSeconds = 0.0;
        var lastArrived = 0L;
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
            var arrived = arrivals.Count();
            if (arrived != lastArrived)
            {
                lastProgress = time.GetTimestamp();
                lastArrived = arrived;
            }

            if (time.GetElapsedTime(lastReport) >= TimeSpan.FromSeconds(1))
            {
                lastReport = time.GetTimestamp();
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{time.GetElapsedTime(start).TotalSeconds,5:F0}s] published {published}, acked {publishers.Sum(p => p.Acked)}, {arrivals.Name} {arrived}"));
            }

            if (drainDeadline is null && (sending.IsCompleted || time.GetElapsedTime(start) >= duration))
            {
                await _stopPublishing.CancelAsync().ConfigureAwait(false);
                await sending.ConfigureAwait(false);
                publishSeconds = time.GetElapsedTime(start).TotalSeconds;
                drainDeadline = time.GetUtcNow() + DrainTimeout;
                continue;
            }

            if (drainDeadline is not null)
            {
                var ackedAll = options.Qos == 0 || publishers.Sum(p => p.Acked) >= published;
                if ((arrivals.AllIn(published) && ackedAll) || time.GetUtcNow() >= drainDeadline) break;
            }

            if (time.GetElapsedTime(lastProgress) >= stallTimeout && arrivals.Missing(published))
            {
                stalled = true;
                break;
            }
        }

        await _stopPublishing.CancelAsync().ConfigureAwait(false);
        await sending.ConfigureAwait(false);
        await pacer.ConfigureAwait(false);
        if (publishSeconds == 0) publishSeconds = time.GetElapsedTime(start).TotalSeconds;
        var totalSeconds = time.GetElapsedTime(start).TotalSeconds;
        await _abort.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(receiveLoops.Concat(subscriberLoops)).ConfigureAwait(false);
        foreach (var publisher in publishers) publisher.Disconnect();
        disconnectSubscribers();

        var sent = new long[publisherCount];
        var ackLatency = LatencyPercentiles.CreateHistogram();
        foreach (var publisher in publishers)
        {
            ackLatency.Add(publisher.AckLatency);
            sent[publisher.Id] = publisher.Sent;
        }

        return new PublishOutcome(stalled, publishSeconds, totalSeconds, sent, ackLatency);
    }

    public void Dispose()
    {
        _abort.Dispose();
        _stopPublishing.Dispose();
    }
}
