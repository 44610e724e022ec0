using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Scenarios.Bench;

/// <summary>
/// What all subscribers of a run share: the count of first-time deliveries with throughput marks, the fan-out
/// completion counters, and the closed loop's credits (returned once a message has reached everyone it should).
/// </summary>
public sealed class BenchDeliveries(FanInFlow flow, DeliveryCompletion completion, bool openLoop)
{
    /// <summary>A throughput mark is taken every this many deliveries (see <see cref="SteadyStateRate"/>).</summary>
    const int MarkEvery = 1024;

    readonly List<(long Received, long Timestamp)> _marks = [];
    readonly Lock _lock = new();
    long _delivered;

    public long Delivered => Volatile.Read(ref _delivered);

    public IReadOnlyList<(long Received, long Timestamp)> Marks
    {
        get
        {
            lock (_lock) return [.. _marks];
        }
    }

    /// <summary>True when this arrival completed its message (it reached the last subscriber that should get it).</summary>
    public bool Arrive(int publisher, long sequence) => completion.Arrive(publisher, sequence);

    /// <summary>Adds one read's first-time deliveries and returns the credits of the messages they completed.</summary>
    public void Add(int fresh, int completed, long timestamp)
    {
        if (fresh > 0)
        {
            var after = Interlocked.Add(ref _delivered, fresh);
            var before = after - fresh;
            if (before == 0 || after / MarkEvery != before / MarkEvery)
            {
                lock (_lock) _marks.Add((after, timestamp));
            }
        }

        if (completed > 0 && !openLoop) flow.Return(completed);
    }
}
