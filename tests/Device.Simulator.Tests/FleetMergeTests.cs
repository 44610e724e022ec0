using System.Globalization;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary><c>iotrealtime-sim merge</c> over the JSON reports of two real shard runs against our broker.</summary>
public sealed class FleetMergeTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-merge-").FullName;

    [Fact]
    public async Task Two_shard_reports_merge_into_sums_exact_percentiles_and_the_union_of_their_times()
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "None"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var paths = new[] { Path.Combine(_dir, "a.json"), Path.Combine(_dir, "b.json") };
        var runs = Enumerable.Range(0, 2).Select(shard =>
        {
            Assert.True(FleetOptions.TryParse(["--mode", "raw", "--port", host.MqttPort.ToString(CultureInfo.InvariantCulture), "--devices", "30",
                "--shard", $"{shard}/2", "--connect-rate", "300", "--interval", "0.05", "--jitter", "0.01", "--qos", "1", "--messages-per-device", "4",
                "--duration", "60", "--verify", "--json", paths[shard], "--no-progress"], out var options, out var error), error);
            return new FleetScenario(options, TimeProvider.System, TextWriter.Null).RunAsync(timeout.Token);
        }).ToArray();
        var exits = await Task.WhenAll(runs);
        Assert.Equal(new[] { 0, 0 }, exits);
        var parts = paths.Select(p => FleetReport.FromJson(File.ReadAllText(p))!).ToArray();

        var mergedPath = Path.Combine(_dir, "merged.json");
        var output = new StringWriter();
        var exit = await MergeCommand.RunAsync([paths[0], paths[1], "--json", mergedPath], output, TextWriter.Null);
        var merged = FleetReport.FromJson(File.ReadAllText(mergedPath))!;

        Assert.Equal(0, exit);
        Assert.Contains("result        clean", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(30, merged.Devices);
        Assert.Equal(30, merged.Connected);
        Assert.Equal(120, merged.Published);
        Assert.Equal(120, merged.Received);
        Assert.Equal(0, merged.Lost);
        Assert.Equal(2, merged.Processes);
        Assert.Equal(parts.Min(p => p.StartedUnixMs), merged.StartedUnixMs);
        Assert.Equal(parts.Max(p => p.EndedUnixMs), merged.EndedUnixMs);
        Assert.Equal(Math.Round((merged.EndedUnixMs - merged.StartedUnixMs) / 1000.0, 2), merged.Seconds);
        Assert.Equal(Math.Round(30 * 1000.0 / (parts.Max(p => p.LastFirstConnectUnixMs) - merged.StartedUnixMs), 1), merged.ConnectsPerSecond);

        // Percentiles of the merged histogram, not an average of the parts' percentiles.
        var both = LatencyPercentiles.CreateHistogram();
        foreach (var p in parts) p.PublishAckHistogram.AddTo(both);
        Assert.Equal(LatencyPercentiles.From(both), merged.PublishAckLatency);
        Assert.Equal(120, merged.PublishAckLatency.Count);
        Assert.Equal(30, merged.ConnectLatency.Count);
    }

    [Fact]
    public async Task Merge_without_reports_says_how_to_use_it()
    {
        var errors = new StringWriter();
        Assert.Equal(2, await MergeCommand.RunAsync([], TextWriter.Null, errors));
        Assert.Contains("usage: iotrealtime-sim merge", errors.ToString(), StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
