using System.Diagnostics;
using System.Text;
using IotRealtime.Hosting.Metrics;
using static IotRealtime.Hosting.Metrics.PrometheusText;

namespace IotRealtime.Broker.Host.Operations;

/// <summary>
/// What the .NET runtime does to the broker, on /metrics: garbage collection (pauses, collections by generation,
/// heap), the thread pool, and how late a work item queued to the thread pool starts (its scheduling lag, sampled
/// ten times a second; the worst of each 10 s window is kept). A stall shows up here: a long GC pause, or a lag of
/// hundreds of milliseconds when something blocks the pool's threads.
/// </summary>
public sealed class RuntimeMetrics : IMetricsSource, IDisposable
{
    static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(100);
    const int WindowProbes = 100;

    readonly TimeProvider _time;
    readonly ITimer _timer;
    readonly Lock _gate = new();
    int _probesInWindow;
    double _windowMaxLag;
    double _lastWindowMaxLag;
    double _maxLagEver;

    public RuntimeMetrics(TimeProvider time)
    {
        _time = time;
        _timer = time.CreateTimer(static s => ((RuntimeMetrics)s!).Probe(), this, ProbeInterval, ProbeInterval);
    }

    void Probe()
    {
        var queued = _time.GetTimestamp();
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Self.Record(state.Self._time.GetElapsedTime(state.Queued).TotalSeconds), (Self: this, Queued: queued), preferLocal: false);
    }

    void Record(double lag)
    {
        lock (_gate)
        {
            _windowMaxLag = Math.Max(_windowMaxLag, lag);
            _maxLagEver = Math.Max(_maxLagEver, lag);
            if (++_probesInWindow >= WindowProbes)
            {
                _lastWindowMaxLag = _windowMaxLag;
                _windowMaxLag = 0;
                _probesInWindow = 0;
            }
        }
    }

    public void WriteMetrics(StringBuilder w)
    {
        double lastWindow, ever;
        lock (_gate)
        {
            lastWindow = Math.Max(_lastWindowMaxLag, _windowMaxLag);
            ever = _maxLagEver;
        }
        Family(w, "iotrealtime_threadpool_lag_max_seconds", "gauge", "Longest wait of a work item for a thread-pool thread in the last 10 s (sampled every 100 ms).", lastWindow);
        Family(w, "iotrealtime_threadpool_lag_max_ever_seconds", "gauge", "Longest such wait since the broker started.", ever);
        Family(w, "iotrealtime_threadpool_threads", "gauge", "Thread-pool threads.", ThreadPool.ThreadCount);
        Family(w, "iotrealtime_threadpool_queue_length", "gauge", "Work items waiting for a thread-pool thread.", ThreadPool.PendingWorkItemCount);
        Family(w, "iotrealtime_gc_pause_seconds_total", "counter", "Time the garbage collector held the process paused.", GC.GetTotalPauseDuration().TotalSeconds);
        Header(w, "iotrealtime_gc_collections_total", "counter", "Garbage collections, by generation.");
        for (var generation = 0; generation <= GC.MaxGeneration; generation++)
        {
            Sample(w, "iotrealtime_gc_collections_total", "generation", Num(generation), GC.CollectionCount(generation));
        }
        Family(w, "iotrealtime_gc_heap_bytes", "gauge", "Managed heap size after the last collection.", GC.GetGCMemoryInfo().HeapSizeBytes);
        using var process = Process.GetCurrentProcess();
        Family(w, "iotrealtime_process_resident_bytes", "gauge", "Resident set size of the broker process.", process.WorkingSet64);
        Family(w, "iotrealtime_process_cpu_seconds_total", "counter", "CPU time the broker process used.", process.TotalProcessorTime.TotalSeconds);
    }

    public void Dispose() => _timer.Dispose();
}
