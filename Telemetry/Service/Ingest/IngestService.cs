using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.Sinks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry.Ingest;

/// <summary>
/// The Kafka consumer that feeds every sink. One thread consumes and decodes; each sink has its own batch builder and a
/// single writer loop (<see cref="SinkWriter"/>). Exactly once into storage: on assignment the consumer seeks to the
/// offsets the sinks stored with their data (a sink that is ahead skips what it holds), and Kafka commits follow the
/// sink writes only as a hint for tools. When a sink is slow or down, its queue fills and the assigned partitions are
/// paused until it catches up: nothing is dropped or skipped.
/// </summary>
sealed class IngestService : BackgroundService
{
    static readonly TimeSpan LagInterval = TimeSpan.FromSeconds(1);
    static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(5);

    readonly TelemetrySettings _settings;
    readonly TelemetryMetrics _metrics;
    readonly ILogger _logger;
    readonly ITelemetrySink[] _sinks;
    readonly SinkWriter[] _writers;
    readonly Builder[] _builders;
    readonly ReadingBatch?[] _held;
    readonly RecordDecoder _decoder;
    readonly AutoResetEvent _progress = new(false);
    readonly ConcurrentQueue<(int Sink, List<SourceOffset> Offsets)> _storedQueue = new();
    readonly CancellationTokenSource _writersStop = new();
    readonly List<Reading> _scratch = [];

    // Consumer-thread state, per assigned partition.
    readonly List<TopicPartition> _assignment = [];
    readonly Dictionary<TopicPartition, long> _next = [];
    readonly Dictionary<TopicPartition, long>[] _floors;
    readonly Dictionary<TopicPartition, long>[] _storedBy;
    readonly Dictionary<TopicPartition, long> _committed = [];
    CancellationToken _stopping;
    bool _paused;
    long _pausedSince;
    int _storedBatches;
    volatile string _state = "starting";

    public IngestService(TelemetrySettings settings, IEnumerable<ITelemetrySink> sinks, TelemetryMetrics metrics, TimeProvider time, ILogger<IngestService> logger)
    {
        _settings = settings;
        _metrics = metrics;
        _logger = logger;
        _sinks = sinks.ToArray();
        _decoder = new RecordDecoder(time);
        _writers = _sinks.Select((s, i) => new SinkWriter(s, i, settings, metrics, logger, OnStored, _progress)).ToArray();
        _builders = _sinks.Select(_ => new Builder()).ToArray();
        _held = new ReadingBatch?[_sinks.Length];
        _floors = _sinks.Select(_ => new Dictionary<TopicPartition, long>()).ToArray();
        _storedBy = _sinks.Select(_ => new Dictionary<TopicPartition, long>()).ToArray();
    }

    /// <summary>starting, running, paused, or failed: reason.</summary>
    public string State => _state;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_sinks.Length == 0) throw new InvalidOperationException("No telemetry sink is registered.");
        _stopping = stoppingToken;
        try
        {
            foreach (var sink in _sinks) await InitializeAsync(sink, stoppingToken).ConfigureAwait(false);
            var writers = _writers.Select(w => Task.Run(() => w.RunAsync(_writersStop.Token), CancellationToken.None)).ToArray();
            try
            {
                await Task.Factory.StartNew(Consume, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            }
            finally
            {
                foreach (var writer in _writers) writer.Complete();
                _writersStop.CancelAfter(ShutdownGrace);
                await Task.WhenAll(writers).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _state = "failed: " + e.Message;
            TelemetryLog.ConsumerCrashed(_logger, e);
        }
    }

    async Task InitializeAsync(ITelemetrySink sink, CancellationToken ct)
    {
        var delay = 100;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await sink.InitializeAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException)
            {
                TelemetryLog.InitializeFailed(_logger, sink.Name, attempt, e.Message);
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = Math.Min(delay * 2, _settings.RetryMaxDelayMs);
            }
        }
    }

    void Consume()
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = _settings.Kafka.BootstrapServers,
            GroupId = _settings.Kafka.GroupId,
            ClientId = "iotrealtime-telemetry",
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = _settings.Kafka.StartFrom == StartPosition.Earliest ? AutoOffsetReset.Earliest : AutoOffsetReset.Latest,
            SessionTimeoutMs = _settings.Kafka.SessionTimeoutMs,
            HeartbeatIntervalMs = Math.Max(1, Math.Min(3000, _settings.Kafka.SessionTimeoutMs / 3)),
            QueuedMaxMessagesKbytes = _settings.Kafka.PrefetchKbytes,
            AllowAutoCreateTopics = false,
            // Eager rebalancing: a revocation always covers every partition, so flushing on revoke is all or nothing.
            PartitionAssignmentStrategy = PartitionAssignmentStrategy.Range,
        };
        using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
            .SetErrorHandler((_, e) => TelemetryLog.ConsumerError(_logger, e.Code.ToString(), e.Reason))
            .SetPartitionsAssignedHandler((_, partitions) => OnAssigned(partitions))
            .SetPartitionsRevokedHandler((c, partitions) => OnRevoked(c, partitions.Select(p => p.TopicPartition).ToList()))
            .SetPartitionsLostHandler((c, partitions) => OnLost(c, partitions.Select(p => p.TopicPartition).ToList()))
            .Build();
        consumer.Subscribe(_settings.Kafka.Topics);
        TelemetryLog.Consuming(_logger, string.Join(", ", _settings.Kafka.Topics), _settings.Kafka.GroupId, _settings.Kafka.BootstrapServers);
        _state = "running";
        var nextLag = Stopwatch.GetTimestamp();
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                var result = consumer.Consume(ConsumeTimeout());
                if (_stopping.IsCancellationRequested) break;
                if (result is { IsPartitionEOF: false, Message: not null }) Handle(result);
                SealDue(consumer);
                DrainStoredAndCommit(consumer);
                if (Stopwatch.GetTimestamp() >= nextLag)
                {
                    UpdateLag(consumer);
                    nextLag = Stopwatch.GetTimestamp() + (long)(LagInterval.TotalSeconds * Stopwatch.Frequency);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        finally
        {
            // What is sealed may still be stored within the grace period; what is half-built is read again next time.
            foreach (var (builder, writer) in _builders.Zip(_writers))
            {
                if (builder.Items > 0 && writer.TryEnqueue(builder.Seal())) continue;
                builder.Clear();
            }
            foreach (var writer in _writers) writer.Complete();
            WaitForWriters(ShutdownGrace);
            DrainStoredAndCommit(consumer);
            try
            {
                consumer.Close();
            }
            catch (KafkaException e)
            {
                TelemetryLog.CommitFailed(_logger, e.Message);
            }
        }
    }

    TimeSpan ConsumeTimeout()
    {
        long? oldest = null;
        foreach (var b in _builders)
        {
            if (b.Items > 0 && (oldest is null || b.StartedAt < oldest)) oldest = b.StartedAt;
        }
        if (oldest is null) return TimeSpan.FromMilliseconds(100);
        var left = _settings.BatchMaxDelayMs - Stopwatch.GetElapsedTime(oldest.Value).TotalMilliseconds;
        return TimeSpan.FromMilliseconds(Math.Clamp(left, 0, 100));
    }

    void Handle(ConsumeResult<byte[]?, byte[]?> record)
    {
        var tp = record.TopicPartition;
        var offset = record.Offset.Value;
        if (_next.TryGetValue(tp, out var next) && next >= 0 && offset < next) return; // already taken (a re-fetch)
        _next[tp] = offset + 1;
        _scratch.Clear();
        var parked = _decoder.Decode(record, _scratch);
        _metrics.RecordConsumed(1, parked is null ? 0 : 1);
        for (var i = 0; i < _builders.Length; i++)
        {
            // A sink ahead of the others already holds this record.
            if (_floors[i].TryGetValue(tp, out var floor) && offset < floor) continue;
            _builders[i].Add(tp, offset + 1, _scratch, parked);
        }
    }

    void SealDue(IConsumer<byte[]?, byte[]?> consumer)
    {
        for (var i = 0; i < _builders.Length; i++)
        {
            var builder = _builders[i];
            if (builder.Items == 0) continue;
            if (builder.Items >= _settings.BatchMaxReadings || Stopwatch.GetElapsedTime(builder.StartedAt).TotalMilliseconds >= _settings.BatchMaxDelayMs)
            {
                Enqueue(consumer, i, builder.Seal());
            }
        }
    }

    /// <summary>Hands a sealed batch to its sink's queue; while that is full, the partitions stay paused.</summary>
    void Enqueue(IConsumer<byte[]?, byte[]?> consumer, int sink, ReadingBatch batch)
    {
        var writer = _writers[sink];
        // Held where a rebalance during the wait below (Consume runs the callbacks) can find it and store it first.
        _held[sink] = batch;
        while (_held[sink] is { } held && !writer.TryEnqueue(held))
        {
            if (_stopping.IsCancellationRequested) return; // not stored, not committed: read again next time
            Pause(consumer, writer);
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is { IsPartitionEOF: false, Message: not null } && _assignment.Contains(result.TopicPartition))
            {
                // Fetched before the pause took effect: not taken; seek back so it comes again after the resume.
                TelemetryLog.SeekBack(_logger, result.TopicPartition.ToString(), result.Offset.Value);
                consumer.Seek(result.TopicPartitionOffset);
                _next[result.TopicPartition] = result.Offset.Value;
            }
            DrainStoredAndCommit(consumer);
        }
        _held[sink] = null;
        if (_paused) Resume(consumer);
    }

    /// <summary>In a rebalance callback, where Consume must not be called: waits for the writer instead.</summary>
    void EnqueueWaiting(int sink, ReadingBatch batch)
    {
        while (!_writers[sink].TryEnqueue(batch) && !_stopping.IsCancellationRequested)
        {
            _progress.WaitOne(100);
            DrainStored();
        }
    }

    void Pause(IConsumer<byte[]?, byte[]?> consumer, SinkWriter writer)
    {
        if (_paused) return;
        consumer.Pause(_assignment);
        _paused = true;
        _pausedSince = Stopwatch.GetTimestamp();
        _metrics.SetPaused(true);
        _state = "paused";
        TelemetryLog.Paused(_logger, writer.Sink.Name, writer.Pending);
    }

    void Resume(IConsumer<byte[]?, byte[]?> consumer)
    {
        consumer.Resume(_assignment);
        _paused = false;
        _metrics.SetPaused(false);
        _state = "running";
        TelemetryLog.Resumed(_logger, (long)Stopwatch.GetElapsedTime(_pausedSince).TotalMilliseconds);
    }

    void OnStored(SinkWriter writer, ReadingBatch batch)
    {
        var exitAfter = _settings.Faults.ExitAfterDbCommitOnBatch;
        if (exitAfter > 0 && Interlocked.Increment(ref _storedBatches) == exitAfter)
        {
            // Before the batch is handed to the consumer thread, so its Kafka commit cannot slip in first.
            TelemetryLog.FaultExit(_logger, exitAfter);
            Process.GetCurrentProcess().Kill(); // SIGKILL: stored, not committed to Kafka
        }
        _storedQueue.Enqueue((writer.Index, batch.Offsets));
    }

    void DrainStored()
    {
        while (_storedQueue.TryDequeue(out var stored))
        {
            var by = _storedBy[stored.Sink];
            foreach (var o in stored.Offsets)
            {
                var tp = new TopicPartition(o.Topic, new Partition(o.Partition));
                if (!by.TryGetValue(tp, out var current) || o.NextOffset > current) by[tp] = o.NextOffset;
            }
        }
    }

    /// <summary>Commits to Kafka what every sink has stored (advisory: the sinks' own offsets are what a restart uses).</summary>
    void DrainStoredAndCommit(IConsumer<byte[]?, byte[]?> consumer)
    {
        if (_storedQueue.IsEmpty) return;
        DrainStored();
        List<TopicPartitionOffset>? commit = null;
        foreach (var tp in _assignment)
        {
            long? least = null;
            foreach (var by in _storedBy)
            {
                if (!by.TryGetValue(tp, out var stored)) { least = null; break; }
                least = least is null ? stored : Math.Min(least.Value, stored);
            }
            if (least is null || (_committed.TryGetValue(tp, out var done) && done >= least)) continue;
            (commit ??= []).Add(new TopicPartitionOffset(tp, least.Value));
        }
        if (commit is null) return;
        try
        {
            consumer.Commit(commit);
            foreach (var c in commit) _committed[c.TopicPartition] = c.Offset.Value;
        }
        catch (KafkaException e)
        {
            TelemetryLog.CommitFailed(_logger, e.Message);
        }
    }

    IEnumerable<TopicPartitionOffset> OnAssigned(List<TopicPartition> partitions)
    {
        var topics = partitions.Select(p => p.Topic).Distinct(StringComparer.Ordinal).ToList();
        var loaded = new Dictionary<TopicPartition, long>[_sinks.Length];
        for (var i = 0; i < _sinks.Length; i++)
        {
            loaded[i] = LoadOffsets(_sinks[i], topics);
        }
        var positions = new List<TopicPartitionOffset>();
        foreach (var tp in partitions)
        {
            long? least = null;
            var missing = false;
            for (var i = 0; i < _sinks.Length; i++)
            {
                if (loaded[i].TryGetValue(tp, out var stored))
                {
                    _floors[i][tp] = stored;
                    _storedBy[i][tp] = stored;
                    least = least is null ? stored : Math.Min(least.Value, stored);
                }
                else
                {
                    _floors[i].Remove(tp);
                    _storedBy[i].Remove(tp);
                    missing = true;
                }
            }
            Offset start = least is { } from && !(missing && _settings.Kafka.StartFrom == StartPosition.Earliest)
                ? new Offset(from)
                : _settings.Kafka.StartFrom == StartPosition.Earliest ? Offset.Beginning : Offset.End;
            _next[tp] = start.IsSpecial ? -1 : start.Value;
            _assignment.Add(tp);
            positions.Add(new TopicPartitionOffset(tp, start));
        }
        TelemetryLog.Assigned(_logger, string.Join(", ", positions.Select(p => $"{p.Topic}/{p.Partition.Value}@{p.Offset}")));
        return positions;
    }

    Dictionary<TopicPartition, long> LoadOffsets(ITelemetrySink sink, List<string> topics)
    {
        var delay = 100;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var offsets = sink.LoadOffsetsAsync(_settings.Kafka.GroupId, topics, _stopping).GetAwaiter().GetResult();
                return offsets.ToDictionary(o => new TopicPartition(o.Topic, new Partition(o.Partition)), o => o.NextOffset);
            }
            catch (Exception e) when (!_stopping.IsCancellationRequested && e is not OutOfMemoryException)
            {
                TelemetryLog.LoadOffsetsFailed(_logger, sink.Name, attempt, e.Message);
                _stopping.WaitHandle.WaitOne(delay);
                delay = Math.Min(delay * 2, _settings.RetryMaxDelayMs);
            }
        }
    }

    void OnRevoked(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> partitions)
    {
        TelemetryLog.Revoked(_logger, string.Join(", ", partitions.Select(p => $"{p.Topic}/{p.Partition.Value}")));
        if (!_stopping.IsCancellationRequested)
        {
            // The next owner starts from the sinks' offsets: store everything taken so far before letting go.
            for (var i = 0; i < _builders.Length; i++)
            {
                if (_held[i] is { } held)
                {
                    _held[i] = null;
                    EnqueueWaiting(i, held);
                }
                if (_builders[i].Items > 0) EnqueueWaiting(i, _builders[i].Seal());
            }
            while (!_stopping.IsCancellationRequested && _writers.Any(w => w.Pending > 0)) _progress.WaitOne(100);
            DrainStoredAndCommit(consumer);
        }
        Forget(consumer, partitions);
    }

    void OnLost(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> partitions)
    {
        // Someone else may own them already: nothing more is written for them.
        foreach (var builder in _builders) builder.Clear();
        Array.Clear(_held);
        Forget(consumer, partitions);
    }

    void Forget(IConsumer<byte[]?, byte[]?> consumer, List<TopicPartition> partitions)
    {
        if (_paused)
        {
            // librdkafka keeps a partition's pause across unassign and assign: a partition given back paused would
            // never be fetched again.
            try
            {
                consumer.Resume(partitions);
            }
            catch (KafkaException e)
            {
                TelemetryLog.ConsumerError(_logger, e.Error.Code.ToString(), e.Message);
            }
        }
        foreach (var tp in partitions)
        {
            _assignment.Remove(tp);
            _next.Remove(tp);
            _committed.Remove(tp);
            foreach (var f in _floors) f.Remove(tp);
            foreach (var s in _storedBy) s.Remove(tp);
        }
        if (_paused && _assignment.Count == 0)
        {
            _paused = false;
            _metrics.SetPaused(false);
        }
        _metrics.SetLag(new Dictionary<string, long>());
    }

    void WaitForWriters(TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (_writers.Any(w => w.Pending > 0) && Stopwatch.GetTimestamp() < deadline) _progress.WaitOne(50);
    }

    void UpdateLag(IConsumer<byte[]?, byte[]?> consumer)
    {
        var lag = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var tp in _assignment)
        {
            var marks = consumer.GetWatermarkOffsets(tp);
            if (marks.High.IsSpecial) continue;
            var position = _next.TryGetValue(tp, out var next) && next >= 0 ? next : marks.Low.IsSpecial ? -1 : marks.Low.Value;
            if (position < 0) continue;
            lag[string.Create(CultureInfo.InvariantCulture, $"{tp.Topic}/{tp.Partition.Value}")] = Math.Max(0, marks.High.Value - position);
        }
        _metrics.SetLag(lag);
    }

    public override void Dispose()
    {
        base.Dispose();
        _writersStop.Dispose();
        _progress.Dispose();
    }

    /// <summary>One sink's batch in the making: bounded by BatchMaxReadings (plus one record's readings).</summary>
    sealed class Builder
    {
        readonly Dictionary<TopicPartition, long> _offsets = [];
        ReadingBatch _batch = new();

        public int Items { get; private set; }

        public long StartedAt { get; private set; }

        public void Add(TopicPartition tp, long nextOffset, List<Reading> readings, ParkedPayload? parked)
        {
            if (Items == 0) StartedAt = Stopwatch.GetTimestamp();
            _offsets[tp] = nextOffset;
            _batch.Readings.AddRange(readings);
            if (parked is not null) _batch.Parked.Add(parked);
            // A record without readings still counts: it advances the offsets that must be stored.
            Items += Math.Max(1, readings.Count);
        }

        public ReadingBatch Seal()
        {
            var batch = _batch;
            foreach (var (tp, next) in _offsets) batch.Offsets.Add(new SourceOffset(tp.Topic, tp.Partition.Value, next));
            _batch = new ReadingBatch();
            _offsets.Clear();
            Items = 0;
            return batch;
        }

        public void Clear()
        {
            _batch = new ReadingBatch();
            _offsets.Clear();
            Items = 0;
        }
    }
}
