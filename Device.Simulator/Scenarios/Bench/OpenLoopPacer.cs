using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Scenarios.Bench;

/// <summary>
/// Open loop: hands out publish credits at a fixed rate whatever the broker does, once a millisecond (about as
/// often as a .NET timer fires), so the publishers send <c>rate</c> messages per second in small bursts.
/// </summary>
public static class OpenLoopPacer
{
    public static async Task RunAsync(FanInFlow flow, int ratePerSecond, TimeProvider time, CancellationToken stop)
    {
        var start = time.GetTimestamp();
        long released = 0;
        try
        {
            while (!stop.IsCancellationRequested && !flow.Exhausted)
            {
                var due = Due(ratePerSecond, time.GetElapsedTime(start)) - released;
                if (due > 0)
                {
                    flow.Return((int)Math.Min(due, int.MaxValue));
                    released += due;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(1), time, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Credits due after <paramref name="elapsed"/> at <paramref name="ratePerSecond"/>, the first one at once.</summary>
    public static long Due(int ratePerSecond, TimeSpan elapsed) => 1 + (long)(ratePerSecond * elapsed.TotalSeconds);
}
