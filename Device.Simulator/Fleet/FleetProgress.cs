using System.Globalization;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>One progress sample: what a process's fleet has done so far. Children send it to their parent as one line.</summary>
public readonly record struct FleetProgress(long Online, long Attempts, long Published, long Failures, long Received)
{
    public const string Prefix = "@progress ";

    public static FleetProgress From(FleetCounters c, long received) =>
        new(c.Online, c.ConnectAttempts, c.Published, c.ConnectFailures + c.PublishFailures + c.Disconnects, received);

    public string ToLine() => string.Create(CultureInfo.InvariantCulture, $"{Prefix}{Online} {Attempts} {Published} {Failures} {Received}");

    public static bool TryParse(string line, out FleetProgress progress)
    {
        progress = default;
        if (!line.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        var parts = line[Prefix.Length..].Split(' ');
        var values = new long[5];
        if (parts.Length != 5) return false;
        for (var i = 0; i < 5; i++)
            if (!long.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i])) return false;
        progress = new FleetProgress(values[0], values[1], values[2], values[3], values[4]);
        return true;
    }

    public static FleetProgress Sum(IEnumerable<FleetProgress> parts) =>
        parts.Aggregate(default(FleetProgress), (a, b) => new(a.Online + b.Online, a.Attempts + b.Attempts, a.Published + b.Published, a.Failures + b.Failures, a.Received + b.Received));

    /// <summary>The terminal line: totals and the rates since the previous sample.</summary>
    public string Describe(FleetProgress previous, double seconds, double elapsed, int devices) => string.Create(CultureInfo.InvariantCulture,
        $"[{elapsed,6:F1} s] connected {Online}/{devices}  connects {(Attempts - previous.Attempts) / seconds,7:F0}/s  publishes {(Published - previous.Published) / seconds,8:F0}/s  acked {Published}  received {Received}  errors {Failures}");
}
