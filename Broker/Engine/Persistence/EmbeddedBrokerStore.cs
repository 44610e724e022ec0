using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// The default store: an append-only log of CRC-framed records under the data directory (<see cref="LogFormat"/>),
/// composed of four parts. <see cref="LogReplayer"/> reads the log at start and cuts a torn or corrupt tail;
/// <see cref="StoreMirror"/> keeps the live state in step with the log and hands each change's record to
/// <see cref="LogWriter"/>, which writes with group commit and owns the durable position — never past what the OS
/// confirmed written (and fsynced, under <see cref="DurabilityPolicy.Fsync"/>), and after a failed write never past
/// the last confirmed one; <see cref="LogCompactor"/> rewrites the log with only the live state, without stopping
/// changes, so the store stays bounded under churn.
/// </summary>
public sealed class EmbeddedBrokerStore : IBrokerStore
{
    readonly LogWriter _log;
    readonly StoreMirror _mirror;
    readonly LogCompactor _compactor;

    EmbeddedBrokerStore(StoreOptions options, ILogger logger)
    {
        var model = new StoreModel();
        var opened = new LogReplayer(options, logger, model).Open();
        _log = new LogWriter(options, logger, opened.File, opened.Generation, opened.Length);
        _mirror = new StoreMirror(model, opened.NextMessageId, _log);
        // how much of a replayed log is live is not known: the first flush compacts it if it is over the threshold. Taking
        // its whole length as the last rewrite's would raise the next compaction's bar fourfold at every restart (a broker
        // killed every few minutes grew one log to 300 MB and replayed 4 million records at its last start)
        _compactor = new LogCompactor(options, logger, _mirror, _log, lastRewriteLength: 0);
        _log.Start(_compactor.MaybeCompact);
    }

    /// <summary>Opens (or creates) the store in <see cref="StoreOptions.Directory"/>, replaying and repairing the log.</summary>
    public static EmbeddedBrokerStore Open(StoreOptions options, ILoggerFactory loggerFactory) =>
        new(options, loggerFactory.CreateLogger<EmbeddedBrokerStore>());

    /// <summary>Told how long each log write (with its fsync, under <see cref="DurabilityPolicy.Fsync"/>) took; the broker feeds its metrics from it.</summary>
    public Action<TimeSpan>? WriteLatencyObserver
    {
        get => _log.LatencyObserver;
        set => _log.LatencyObserver = value;
    }

    /// <summary>Test seam: runs on the writer thread when a compaction has captured the live state, before it writes the new file.</summary>
    internal Action? CompactionCaptured
    {
        get => _compactor.Captured;
        set => _compactor.Captured = value;
    }

    public StoredState Load() => _mirror.State;

    public bool Healthy => _log.Healthy;

    public long Position => _log.Position;

    /// <summary>True only for positions whose write (and fsync) returned; after a failure, never for one past the last such write.</summary>
    public bool IsDurable(long position) => _log.IsDurable(position);

    public ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken = default) => _log.WaitDurableAsync(position, cancellationToken);

    public long RetainSet(MqttMessage message) => _mirror.RetainSet(message);

    public long RetainClear(string topic) => _mirror.RetainClear(topic);

    public long SessionStarted(string clientId, uint expiryInterval, string? username, MqttMessage? will, uint willDelaySeconds) =>
        _mirror.SessionStarted(clientId, expiryInterval, username, will, willDelaySeconds);

    public long SessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt) => _mirror.SessionOffline(clientId, at, willDueAt);

    public long SessionExpiryChanged(string clientId, uint expiryInterval) => _mirror.SessionExpiryChanged(clientId, expiryInterval);

    public long SessionEnded(string clientId) => _mirror.SessionEnded(clientId);

    public long Subscribed(string clientId, StoredSubscription subscription) => _mirror.Subscribed(clientId, subscription);

    public long Unsubscribed(string clientId, string filter) => _mirror.Unsubscribed(clientId, filter);

    public long Enqueued(string clientId, StoredDelivery delivery) => _mirror.Enqueued(clientId, delivery);

    public long InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state) =>
        _mirror.InflightChanged(clientId, deliveryId, packetId, state);

    public long Completed(string clientId, long deliveryId) => _mirror.Completed(clientId, deliveryId);

    public long InboundQos2Added(string clientId, ushort packetId) => _mirror.InboundQos2Added(clientId, packetId);

    public long InboundQos2Released(string clientId, ushort packetId) => _mirror.InboundQos2Released(clientId, packetId);

    public ValueTask DisposeAsync() => _log.DisposeAsync();
}
