using System.Diagnostics;
using System.Threading.Channels;
using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.Sinks;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry.Ingest;

/// <summary>
/// The single writer loop of one sink and its bounded queue of sealed batches. Overflow policy: the queue never drops;
/// <see cref="TryEnqueue"/> refuses and the consumer pauses its partitions until there is room (back-pressure). A failed
/// write is retried, the same batch, with doubling backoff, until it succeeds or the service stops.
/// </summary>
sealed class SinkWriter
{
    const int FirstRetryDelayMs = 100;

    readonly Channel<ReadingBatch> _queue;
    readonly TelemetrySettings _settings;
    readonly TelemetryMetrics _metrics;
    readonly ILogger _logger;
    readonly Action<SinkWriter, ReadingBatch> _stored;
    readonly AutoResetEvent _progress;
    int _pending;

    public SinkWriter(ITelemetrySink sink, int index, TelemetrySettings settings, TelemetryMetrics metrics, ILogger logger,
        Action<SinkWriter, ReadingBatch> stored, AutoResetEvent progress)
    {
        Sink = sink;
        Index = index;
        _settings = settings;
        _metrics = metrics;
        _logger = logger;
        _stored = stored;
        _progress = progress;
        _queue = Channel.CreateBounded<ReadingBatch>(new BoundedChannelOptions(settings.MaxPendingBatches)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public ITelemetrySink Sink { get; }

    public int Index { get; }

    /// <summary>Batches queued or being written.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>True while a write is failing and being retried.</summary>
    public bool Failing { get; private set; }

    public bool TryEnqueue(ReadingBatch batch)
    {
        Interlocked.Increment(ref _pending);
        if (_queue.Writer.TryWrite(batch)) return true;
        Interlocked.Decrement(ref _pending);
        return false;
    }

    /// <summary>No more batches: the loop ends once the queue is written.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var batch in _queue.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                await WriteAsync(batch, ct).ConfigureAwait(false);
                Interlocked.Decrement(ref _pending);
                _progress.Set();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: what was not stored is read again from Kafka next time.
        }
    }

    async Task WriteAsync(ReadingBatch batch, CancellationToken ct)
    {
        var delay = FirstRetryDelayMs;
        for (var attempt = 1; ; attempt++)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await Sink.WriteAsync(batch, ct).ConfigureAwait(false);
                _metrics.RecordWrite(Sink.Name, batch.Readings.Count, Stopwatch.GetElapsedTime(started));
                if (attempt > 1) TelemetryLog.SinkRecovered(_logger, Sink.Name, attempt - 1);
                Failing = false;
                _stored(this, batch);
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException)
            {
                Failing = true;
                _metrics.RecordFailure(Sink.Name);
                TelemetryLog.WriteFailed(_logger, Sink.Name, batch.Readings.Count, attempt, delay, e.Message);
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = Math.Min(delay * 2, _settings.RetryMaxDelayMs);
            }
        }
    }
}
