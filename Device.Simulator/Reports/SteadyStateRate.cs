namespace IotRealtime.Device.Simulator.Reports;

/// <summary>
/// Receive rate with the ramp and the drain left out: the rate between the marks at which 10 % and 90 % of all
/// received messages had arrived. Marks are (messages received so far, timestamp) pairs taken as messages arrive.
/// </summary>
public static class SteadyStateRate
{
    public const double From = 0.10;
    public const double To = 0.90;

    public static double PerSecond(IReadOnlyList<(long Received, long Timestamp)> marks, long total, long timestampFrequency)
    {
        if (marks.Count < 2 || total <= 0) return 0;
        var low = (long)Math.Ceiling(total * From);
        var high = (long)Math.Floor(total * To);
        int first = -1, last = -1;
        for (var i = 0; i < marks.Count; i++)
        {
            if (first < 0 && marks[i].Received >= low) first = i;
            if (marks[i].Received <= high) last = i;
        }

        // Too few marks inside the window (a tiny run): fall back to first-to-last.
        if (first < 0 || last <= first)
        {
            first = 0;
            last = marks.Count - 1;
        }

        var ticks = marks[last].Timestamp - marks[first].Timestamp;
        if (ticks <= 0) return 0;
        return (marks[last].Received - marks[first].Received) * (double)timestampFrequency / ticks;
    }
}
