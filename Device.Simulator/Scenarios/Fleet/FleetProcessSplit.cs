using System.Diagnostics;
using System.Globalization;
using IotRealtime.Device.Simulator.Fleet;

namespace IotRealtime.Device.Simulator.Scenarios.Fleet;

/// <summary>
/// <c>--processes K</c>: runs this shard as K child processes of this executable, child j being shard i·K+j of n·K with
/// its own block of source addresses, so each stays under one process's open-file limit. Children report progress as
/// lines on stdout and their results as JSON files, which the parent sums and merges.
/// </summary>
public sealed class FleetProcessSplit(FleetOptions options, IReadOnlyList<string> args, TextWriter output)
{
    /// <summary>Options the parent sets per child, dropped from what it passes on (flags first, then options with a value).</summary>
    static readonly string[] ParentFlags = ["--no-progress", "--child"];
    static readonly string[] ParentOptions = ["--processes", "--shard", "--source-base", "--json", "--churn-rate"];

    /// <summary>The arguments child <paramref name="process"/> runs with.</summary>
    public static List<string> ChildArguments(FleetOptions options, IReadOnlyList<string> args, int process, string jsonPath)
    {
        var result = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            if (ParentFlags.Contains(args[i])) continue;
            if (ParentOptions.Contains(args[i]))
            {
                i++;
                continue;
            }

            result.Add(args[i]);
        }

        result.AddRange(["--child", "--shard", options.Shard.Split(process, options.Processes).ToString(),
            "--source-base", options.SourceBaseFor(process)?.ToString() ?? "none", "--json", jsonPath]);
        // The churn rate is for the whole run: each child churns its share.
        if (options.ChurnRate > 0) result.AddRange(["--churn-rate", (options.ChurnRate / options.Processes).ToString("R", CultureInfo.InvariantCulture)]);
        return result;
    }

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var dir = Directory.CreateTempSubdirectory("iotrealtime-sim-").FullName;
        var children = new List<(Process Process, Task Reader, string Json)>();
        var latest = new FleetProgress[options.Processes];
        var latestLock = new Lock();
        var (_, devices) = options.LocalDevices;
        output.WriteLine($"fleet: {devices} devices of shard {options.Shard} over {options.Processes} processes");
        try
        {
            for (var j = 0; j < options.Processes; j++)
            {
                var json = Path.Combine(dir, $"child-{j}.json");
                var start = StartInfo(ChildArguments(options, args, j, json));
                var process = Process.Start(start) ?? throw new InvalidOperationException("could not start a child process");
                var index = j;
                Task reader = Task.Run(async () =>
                {
                    while (await process.StandardOutput.ReadLineAsync(CancellationToken.None).ConfigureAwait(false) is { } line)
                    {
                        if (FleetProgress.TryParse(line, out var p))
                        {
                            lock (latestLock) latest[index] = p;
                        }
                        else
                        {
                            await output.WriteLineAsync($"[{index}] {line}").ConfigureAwait(false);
                        }
                    }
                }, CancellationToken.None);
                children.Add((process, reader, json));
            }

            var started = Stopwatch.GetTimestamp();
            var previous = default(FleetProgress);
            // Children stop by themselves after --duration; a child that does not is killed (by its own PID) after this grace.
            var deadline = started + (long)((options.DurationSeconds + options.ConnectTimeoutSeconds + 30) * Stopwatch.Frequency);
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            while (children.Any(c => !c.Process.HasExited))
            {
                var all = Task.WhenAll(children.Select(c => c.Process.WaitForExitAsync(CancellationToken.None)));
                await Task.WhenAny(all, timer.WaitForNextTickAsync(CancellationToken.None).AsTask()).ConfigureAwait(false);
                FleetProgress sample;
                lock (latestLock) sample = FleetProgress.Sum(latest);
                if (options.Progress && !all.IsCompleted)
                    output.WriteLine(sample.Describe(previous, 1, Stopwatch.GetElapsedTime(started).TotalSeconds, devices));
                previous = sample;
                if (Stopwatch.GetTimestamp() > deadline)
                {
                    foreach (var c in children.Where(c => !c.Process.HasExited)) c.Process.Kill(entireProcessTree: true);
                }
            }

            await Task.WhenAll(children.Select(c => c.Reader)).ConfigureAwait(false);
            var reports = new List<FleetReport>();
            for (var j = 0; j < children.Count; j++)
            {
                var path = children[j].Json;
                var report = File.Exists(path) ? FleetReport.FromJson(await File.ReadAllTextAsync(path, CancellationToken.None).ConfigureAwait(false)) : null;
                if (report is null) output.WriteLine($"child {j} (pid {children[j].Process.Id}) wrote no report; exit code {children[j].Process.ExitCode}");
                else reports.Add(report);
            }

            if (reports.Count == 0) return 1;
            var merged = FleetReport.Merge(reports, options.Processes, options.Shard.ToString());
            merged.WriteText(output);
            if (options.JsonPath is not null) merged.WriteJson(options.JsonPath);
            return merged.Clean && reports.Count == options.Processes ? 0 : 1;
        }
        finally
        {
            foreach (var c in children) c.Process.Dispose();
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    static ProcessStartInfo StartInfo(List<string> childArgs)
    {
        var exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this process's executable");
        var start = new ProcessStartInfo(exe) { RedirectStandardOutput = true, UseShellExecute = false };
        // Run as "dotnet iotrealtime-sim.dll": the child needs the dll too.
        if (Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            start.ArgumentList.Add(typeof(FleetProcessSplit).Assembly.Location);
        start.ArgumentList.Add("run");
        foreach (var a in childArgs) start.ArgumentList.Add(a);
        return start;
    }
}
