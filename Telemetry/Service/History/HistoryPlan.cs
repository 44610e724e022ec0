namespace IotRealtime.Telemetry.History;

/// <summary>Where a part of a history range is read from.</summary>
public enum HistorySource
{
    /// <summary>telemetry_readings: every reading.</summary>
    Raw,
    /// <summary>telemetry_rollup_1m: min/max/sum/count/last per device, metric and minute.</summary>
    Minute,
    /// <summary>telemetry_rollup_1h: the same per hour.</summary>
    Hour,
}

/// <summary>One half-open part [From, To) of a history range and the table that answers it.</summary>
public readonly record struct HistorySegment(HistorySource Source, DateTimeOffset From, DateTimeOffset To);

/// <summary>
/// Splits a range so each part is read from the coarsest table that gives exact answers: whole hours from the hourly
/// roll-up, the whole minutes around them from the minute roll-up, and the seconds at the ragged ends from the raw
/// readings. A roll-up row is only usable when it falls inside one bucket, i.e. when the step is a whole number of
/// its periods; a 30 s step therefore reads raw readings only. The result is the same as reading everything raw
/// (the history tests check that), while a 30-day chart reads ~720 hourly rows instead of every reading.
/// </summary>
public static class HistoryPlan
{
    static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    public static IReadOnlyList<HistorySegment> For(DateTimeOffset from, DateTimeOffset to, TimeSpan step, bool hourlyAvailable)
    {
        var segments = new List<HistorySegment>(5);
        if (step.Ticks % Minute.Ticks != 0)
        {
            Add(segments, HistorySource.Raw, from, to);
            return segments;
        }
        var m0 = Ceiling(from, Minute);
        var m1 = Floor(to, Minute);
        if (m0 >= m1)
        {
            Add(segments, HistorySource.Raw, from, to);
            return segments;
        }
        Add(segments, HistorySource.Raw, from, m0);
        var h0 = Ceiling(m0, Hour);
        var h1 = Floor(m1, Hour);
        if (hourlyAvailable && step.Ticks % Hour.Ticks == 0 && h0 < h1)
        {
            Add(segments, HistorySource.Minute, m0, h0);
            Add(segments, HistorySource.Hour, h0, h1);
            Add(segments, HistorySource.Minute, h1, m1);
        }
        else
        {
            Add(segments, HistorySource.Minute, m0, m1);
        }
        Add(segments, HistorySource.Raw, m1, to);
        return segments;
    }

    static void Add(List<HistorySegment> segments, HistorySource source, DateTimeOffset from, DateTimeOffset to)
    {
        if (from < to) segments.Add(new HistorySegment(source, from, to));
    }

    static DateTimeOffset Floor(DateTimeOffset t, TimeSpan unit) => new(t.UtcTicks - t.UtcTicks % unit.Ticks, TimeSpan.Zero);

    static DateTimeOffset Ceiling(DateTimeOffset t, TimeSpan unit)
    {
        var floor = Floor(t, unit);
        return floor.UtcTicks == t.UtcTicks ? floor : floor + unit;
    }
}
