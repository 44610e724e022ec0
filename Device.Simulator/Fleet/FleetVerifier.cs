using HdrHistogram;
using IotRealtime.Device.Simulator.Reports;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// One extra client on the fleet's telemetry filter (<c>devices/+/telemetry</c>): records which (device, sequence)
/// pairs of this process's devices arrive, for loss and duplication, and the end-to-end latency from the payload's
/// <c>ts</c>. Messages of devices simulated elsewhere (other shards or processes) are ignored.
/// </summary>
public sealed class FleetVerifier(FleetOptions options, FleetConnectionFactory factory, int firstDevice, int deviceCount, TimeProvider time) : IAsyncDisposable
{
    readonly SequenceTracker _tracker = new(deviceCount);
    readonly Lock _lock = new();
    readonly IMqttClient _client = factory.ClientFactory.CreateMqttClient();

    public LongHistogram EndToEnd { get; } = LatencyPercentiles.CreateHistogram();

    public long Received
    {
        get
        {
            lock (_lock) return _tracker.Distinct;
        }
    }

    public long Duplicates
    {
        get
        {
            lock (_lock) return _tracker.Duplicates;
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _client.ApplicationMessageReceivedAsync += e =>
        {
            if (TelemetryPayload.TryRead(e.ApplicationMessage.Payload, out var device, out var sequence, out var sentMillis))
            {
                var local = device - firstDevice;
                if (local >= 0 && local < deviceCount)
                {
                    var nowMillis = (time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds;
                    lock (_lock)
                    {
                        if (_tracker.Record(local, sequence)) LatencyPercentiles.Record(EndToEnd, (long)((nowMillis - sentMillis) * 1000));
                    }
                }
            }

            return Task.CompletedTask;
        };

        var id = $"verify-{options.Shard.Index}-{firstDevice}-{Environment.ProcessId}";
        await _client.ConnectAsync(factory.Build(id, source: null, redirect: options.TargetFor(0), cleanStart: true, socketBufferBytes: FleetConnectionFactory.StreamBufferBytes), cancellationToken).ConfigureAwait(false);
        var subscribe = factory.ClientFactory.CreateSubscribeOptionsBuilder().WithTopicFilter(options.VerifyFilter, (MqttQualityOfServiceLevel)options.Qos).Build();
        var result = await _client.SubscribeAsync(subscribe, cancellationToken).ConfigureAwait(false);
        var granted = result.Items.First().ResultCode;
        if ((int)granted > 2) throw new InvalidOperationException($"verifier subscription to {options.VerifyFilter} refused: {granted}");
    }

    /// <summary>Messages of devices that completed them (sequences 0 .. sent[d] − 1) that never arrived.</summary>
    public long Lost(IReadOnlyList<long> sentPerDevice)
    {
        lock (_lock) return _tracker.Lost(sentPerDevice);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (_client.IsConnected) await _client.DisconnectAsync(new MqttClientDisconnectOptions(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
        }

        _client.Dispose();
    }
}
