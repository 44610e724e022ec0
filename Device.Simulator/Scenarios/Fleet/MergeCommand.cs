using IotRealtime.Device.Simulator.Fleet;

namespace IotRealtime.Device.Simulator.Scenarios.Fleet;

/// <summary>
/// <c>iotrealtime-sim merge a.json b.json ... [--json out.json]</c>: one report for fleet runs on several processes or
/// hosts. Counts add up, latency histograms merge bucket by bucket (exact percentiles), and times span the union of runs.
/// </summary>
public static class MergeCommand
{
    public const string Usage = "usage: iotrealtime-sim merge REPORT.json REPORT.json ... [--json OUT.json]";

    public static bool Handles(string[] args) => args.Length > 0 && args[0] == "merge";

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, TextWriter errors)
    {
        var inputs = new List<string>();
        string? json = null;
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] is "-h" or "--help")
            {
                await output.WriteLineAsync(Usage).ConfigureAwait(false);
                return 0;
            }

            if (args[i] == "--json")
            {
                if (i + 1 >= args.Count) return await FailAsync(errors, "--json needs a path").ConfigureAwait(false);
                json = args[++i];
                continue;
            }

            inputs.Add(args[i]);
        }

        if (inputs.Count == 0) return await FailAsync(errors, "merge needs at least one report").ConfigureAwait(false);
        var reports = new List<FleetReport>();
        foreach (var path in inputs)
        {
            FleetReport? report;
            try
            {
                report = FleetReport.FromJson(await File.ReadAllTextAsync(path).ConfigureAwait(false));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
            {
                return await FailAsync(errors, $"cannot read fleet report '{path}': {e.Message}").ConfigureAwait(false);
            }

            if (report is null) return await FailAsync(errors, $"'{path}' holds no fleet report").ConfigureAwait(false);
            reports.Add(report);
        }

        var merged = FleetReport.Merge(reports, reports.Sum(r => r.Processes), $"merged from {reports.Count} report(s)");
        merged.WriteText(output);
        if (json is not null) merged.WriteJson(json);
        return merged.Clean ? 0 : 1;
    }

    static async Task<int> FailAsync(TextWriter errors, string message)
    {
        await errors.WriteLineAsync($"iotrealtime-sim: {message}").ConfigureAwait(false);
        await errors.WriteLineAsync(Usage).ConfigureAwait(false);
        return 2;
    }
}
