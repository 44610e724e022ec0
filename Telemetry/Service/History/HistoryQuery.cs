using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace IotRealtime.Telemetry.History;

/// <summary>
/// A validated <c>GET /api/history</c> request: one device and metric, the half-open range [From, To), and the bucket
/// width. Buckets start at multiples of <see cref="Step"/> since the Unix epoch (so a 1-minute bucket starts on the
/// minute and a 1-day bucket at 00:00 UTC).
/// </summary>
public sealed record HistoryQuery(string Device, string Metric, DateTimeOffset From, DateTimeOffset To, TimeSpan Step)
{
    /// <summary>The most buckets one request may ask for: charts never need more, and it bounds the work per request.</summary>
    public const int MaxBuckets = 10_000;

    /// <summary>The range used when <c>from</c> is omitted.</summary>
    public static readonly TimeSpan DefaultRange = TimeSpan.FromHours(24);

    /// <summary>About this many buckets when <c>step</c> is omitted: one per few pixels of a wide chart.</summary>
    const int AutoBuckets = 300;

    static readonly int[] NiceSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 7 * 86400];

    public long StepSeconds => (long)Step.TotalSeconds;

    /// <summary>Parses and validates the query string; <paramref name="error"/> names the bad parameter and what is accepted.</summary>
    public static bool TryParse(IQueryCollection query, DateTimeOffset now, out HistoryQuery? result, out string? error)
    {
        result = null;
        error = CheckUnknown(query, ["device", "metric", "from", "to", "step"]);
        if (error is not null) return false;
        var device = query["device"].ToString();
        var metric = query["metric"].ToString();
        if (device.Length == 0) return Fail("device is required (e.g. device=sensor-1).", out error);
        if (metric.Length == 0) return Fail("metric is required (e.g. metric=temp; GET /api/history/metrics?device=... lists them).", out error);

        var to = now;
        if (query.ContainsKey("to") && !TryParseTime(query["to"].ToString(), out to)) return Fail($"to '{query["to"]}' is not an ISO 8601 time (e.g. 2026-12-01T12:00:00Z).", out error);
        var from = to - DefaultRange;
        if (query.ContainsKey("from") && !TryParseTime(query["from"].ToString(), out from)) return Fail($"from '{query["from"]}' is not an ISO 8601 time (e.g. 2026-12-01T00:00:00Z).", out error);
        if (from >= to) return Fail($"from ({from:O}) must be before to ({to:O}).", out error);

        TimeSpan step;
        if (query.ContainsKey("step"))
        {
            if (!TryParseStep(query["step"].ToString(), out step)) return Fail($"step '{query["step"]}' is not a whole number of seconds (60) or a duration like 30s, 5m, 1h, 1d.", out error);
        }
        else
        {
            step = AutoStep(to - from);
        }
        var buckets = Math.Ceiling((to - from) / step);
        if (buckets > MaxBuckets)
        {
            return Fail($"step {(long)step.TotalSeconds} s over {(to - from).TotalSeconds:0} s gives {buckets:0} buckets; at most {MaxBuckets} are allowed (use a step of at least {Math.Ceiling((to - from).TotalSeconds / MaxBuckets):0} s).", out error);
        }
        result = new HistoryQuery(device, metric, from, to, step);
        return true;
    }

    /// <summary>Seconds ("60") or a number with unit s, m, h or d ("5m"); whole seconds, 1 s to 366 d.</summary>
    public static bool TryParseStep(string text, out TimeSpan step)
    {
        step = default;
        if (text.Length == 0) return false;
        var unit = char.IsAsciiLetter(text[^1]) ? text[^1] : 's';
        var digits = char.IsAsciiLetter(text[^1]) ? text[..^1] : text;
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1) return false;
        long? seconds = unit switch
        {
            's' => n,
            'm' => n * 60,
            'h' => n * 3600,
            'd' => n * 86400,
            _ => null,
        };
        if (seconds is not { } s || s > 366L * 86400) return false;
        step = TimeSpan.FromSeconds(s);
        return true;
    }

    /// <summary>The smallest "nice" step that keeps the range within about <see cref="AutoBuckets"/> buckets.</summary>
    public static TimeSpan AutoStep(TimeSpan range)
    {
        foreach (var s in NiceSteps)
        {
            if (range.TotalSeconds / s <= AutoBuckets) return TimeSpan.FromSeconds(s);
        }
        return TimeSpan.FromSeconds(Math.Ceiling(range.TotalSeconds / MaxBuckets));
    }

    static bool TryParseTime(string text, out DateTimeOffset time)
    {
        // An unencoded '+' of an offset arrives as a space: "...T10:00:00 01:00" means +01:00.
        if (text.Length > 6 && text[^6] == ' ' && text[^3] == ':') text = string.Concat(text.AsSpan(0, text.Length - 6), "+", text.AsSpan(text.Length - 5));
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time)
            && text.Length >= 10 && char.IsAsciiDigit(text[0]);
    }

    internal static string? CheckUnknown(IQueryCollection query, string[] known)
    {
        foreach (var key in query.Keys)
        {
            if (!known.Contains(key, StringComparer.Ordinal)) return $"'{key}' is not a parameter here; accepted: {string.Join(", ", known)}.";
            if (query[key].Count > 1) return $"{key} is given {query[key].Count} times; give it once.";
        }
        return null;
    }

    static bool Fail(string message, out string? error)
    {
        error = message;
        return false;
    }
}
