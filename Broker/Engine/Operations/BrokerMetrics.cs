using System.Diagnostics.Metrics;
using IotRealtime.Hosting.Metrics;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Operations;

/// <summary>Why a CONNECT was refused by overload protection or a drain; counted per reason.</summary>
public enum ConnectRefusal
{
    Draining,
    MaxConnections,
    ConnectRate,
}

/// <summary>Why an inbound PUBLISH was refused by the per-client limits; counted per reason.</summary>
public enum PublishRefusal
{
    MessageRate,
    ByteRate,
}

/// <summary>
/// The engine's operational metrics: the <see cref="MqttBroker"/> counters plus connects, refusals and latency histograms,
/// published as the <see cref="System.Diagnostics.Metrics.Meter"/> "IotRealtime.Broker" (for OpenTelemetry and
/// dotnet-counters) and readable directly (the host's /metrics exporter reads them here).
/// </summary>
public sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "IotRealtime.Broker";

    readonly MqttBroker _broker;
    readonly Meter _meter;
    readonly Histogram<double> _acceptInstrument;
    readonly Histogram<double> _storeWriteInstrument;
    readonly long[] _connectRefused = new long[Enum.GetValues<ConnectRefusal>().Length];
    readonly long[] _publishRefused = new long[Enum.GetValues<PublishRefusal>().Length];
    long _connects;
    long _limitDisconnects;
    long _writeStallDisconnects;
    long _backpressureWaits;
    long _backpressureTimeouts;
    long _backpressureHeld;

    internal BrokerMetrics(MqttBroker broker)
    {
        _broker = broker;
        _meter = new Meter(MeterName, MqttBroker.Version);
        _meter.CreateObservableGauge("iotrealtime.connections", () => _broker.ConnectedClients, "{connection}", "Open MQTT connections.");
        _meter.CreateObservableCounter("iotrealtime.connects", () => Connects, "{connect}", "Accepted CONNECTs.");
        _meter.CreateObservableCounter("iotrealtime.connections.refused", () => Enum.GetValues<ConnectRefusal>().Select(r => new Measurement<long>(ConnectsRefused(r), new KeyValuePair<string, object?>("reason", Label(r)))), "{connect}", "CONNECTs refused by overload protection or a drain.");
        _meter.CreateObservableCounter("iotrealtime.messages.received", () => Qos(_broker.MessagesReceivedAt), "{message}", "PUBLISH packets received from clients.");
        _meter.CreateObservableCounter("iotrealtime.messages.sent", () => Qos(_broker.MessagesSentAt), "{message}", "PUBLISH packets sent to clients.");
        _meter.CreateObservableCounter("iotrealtime.bytes.received", () => _broker.BytesReceived, "By", "MQTT bytes received.");
        _meter.CreateObservableCounter("iotrealtime.bytes.sent", () => _broker.BytesSent, "By", "MQTT bytes sent.");
        _meter.CreateObservableCounter("iotrealtime.messages.dropped", () => Enum.GetValues<DropReason>().Select(r => new Measurement<long>(_broker.Dropped(r), new KeyValuePair<string, object?>("reason", Label(r)))), "{message}", "Messages not delivered, by reason.");
        _meter.CreateObservableCounter("iotrealtime.publishes.refused", () => Enum.GetValues<PublishRefusal>().Select(r => new Measurement<long>(PublishesRefused(r), new KeyValuePair<string, object?>("reason", Label(r)))), "{message}", "Inbound publishes refused by per-client limits.");
        _meter.CreateObservableGauge("iotrealtime.queue.depth", () => _broker.QueueDepthTotal(), "{message}", "Messages queued for delivery across all sessions.");
        _meter.CreateObservableGauge("iotrealtime.sessions", () => _broker.SessionCount, "{session}", "Sessions, online and offline.");
        _meter.CreateObservableGauge("iotrealtime.retained", () => _broker.Retained.Count, "{message}", "Retained messages.");
        _acceptInstrument = _meter.CreateHistogram<double>("iotrealtime.accept.duration", "s", "Time publishes spent in an asynchronous accept stage.");
        _storeWriteInstrument = _meter.CreateHistogram<double>("iotrealtime.store.write.duration", "s", "Durable store write latency.");
    }

    public long Connects => Interlocked.Read(ref _connects);

    public long ConnectsRefused(ConnectRefusal reason) => Interlocked.Read(ref _connectRefused[(int)reason]);

    public long PublishesRefused(PublishRefusal reason) => Interlocked.Read(ref _publishRefused[(int)reason]);

    /// <summary>Clients disconnected with 0x97 for staying over their publish limits.</summary>
    public long PublishLimitDisconnects => Interlocked.Read(ref _limitDisconnects);

    /// <summary>Clients disconnected because they did not read what was sent to them for <see cref="BrokerOptions.WriteStallTimeoutSeconds"/>.</summary>
    public long WriteStallDisconnects => Interlocked.Read(ref _writeStallDisconnects);

    /// <summary>Times a publisher's connection went unread waiting for a subscriber to drain (<see cref="QueueOverflowPolicy.Backpressure"/>).</summary>
    public long BackpressureWaits => Interlocked.Read(ref _backpressureWaits);

    /// <summary>Of those, the waits that ended at <see cref="BrokerOptions.BackpressureTimeoutSeconds"/> rather than by the drain.</summary>
    public long BackpressureTimeouts => Interlocked.Read(ref _backpressureTimeouts);

    /// <summary>Publishers' connections held back right now.</summary>
    public long BackpressureHeld => Interlocked.Read(ref _backpressureHeld);

    /// <summary>Accept-stage latency of publishes whose accept stage completed asynchronously (a synchronous accept costs nothing to measure).</summary>
    public LatencyHistogram AcceptLatency { get; } = new();

    /// <summary>Durable store write latency, fed by the store through <see cref="RecordStoreWrite"/>.</summary>
    public LatencyHistogram StoreWriteLatency { get; } = new();

    /// <summary>Hook for the durable store: call once per write (or batch flush) with how long it took.</summary>
    public void RecordStoreWrite(TimeSpan elapsed)
    {
        StoreWriteLatency.Record(elapsed);
        _storeWriteInstrument.Record(elapsed.TotalSeconds);
    }

    internal void RecordAccept(TimeSpan elapsed)
    {
        AcceptLatency.Record(elapsed);
        _acceptInstrument.Record(elapsed.TotalSeconds);
    }

    internal void CountConnect() => Interlocked.Increment(ref _connects);

    internal void CountConnectRefused(ConnectRefusal reason) => Interlocked.Increment(ref _connectRefused[(int)reason]);

    internal void CountPublishRefused(PublishRefusal reason) => Interlocked.Increment(ref _publishRefused[(int)reason]);

    internal void CountLimitDisconnect() => Interlocked.Increment(ref _limitDisconnects);

    internal void CountWriteStallDisconnect() => Interlocked.Increment(ref _writeStallDisconnects);

    internal void BeginBackpressureWait()
    {
        Interlocked.Increment(ref _backpressureWaits);
        Interlocked.Increment(ref _backpressureHeld);
    }

    internal void EndBackpressureWait() => Interlocked.Decrement(ref _backpressureHeld);

    internal void CountBackpressureTimeout() => Interlocked.Increment(ref _backpressureTimeouts);

    /// <summary>The label value used for a reason: snake_case of the enum name (QueueFull → queue_full).</summary>
    public static string Label<T>(T reason) where T : struct, Enum
    {
        var name = reason.ToString();
        var chars = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                chars.Append('_');
            }
            chars.Append(char.ToLowerInvariant(name[i]));
        }
        return chars.ToString();
    }

    static IEnumerable<Measurement<long>> Qos(Func<MqttQualityOfServiceLevel, long> read)
    {
        for (var q = 0; q <= 2; q++)
        {
            yield return new Measurement<long>(read((MqttQualityOfServiceLevel)q), new KeyValuePair<string, object?>("qos", q));
        }
    }

    public void Dispose() => _meter.Dispose();
}
