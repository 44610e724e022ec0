using System.Globalization;
using System.Net;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Scenarios.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>--churn-rate: short-lived connections beside a fleet.</summary>
public sealed class FleetChurnTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-churn-").FullName;

    [Fact]
    public void Churn_sources_rotate_over_their_own_loopback_addresses()
    {
        Assert.Equal(IPAddress.Parse("127.1.0.1"), ConnectionChurn.Source(0));
        Assert.Equal(IPAddress.Parse("127.1.0.64"), ConnectionChurn.Source(63));
        Assert.Equal(IPAddress.Parse("127.1.0.1"), ConnectionChurn.Source(64));
    }

    [Fact]
    public void Each_child_process_churns_its_share_of_the_rate()
    {
        string[] args = ["--devices", "100", "--processes", "4", "--churn-rate", "500"];
        Assert.True(FleetOptions.TryParse(args, out var options, out var error), error);

        var child = FleetProcessSplit.ChildArguments(options, args, 1, "c1.json");

        Assert.Equal(["--churn-rate", "125"], child.Skip(child.IndexOf("--churn-rate")).Take(2));
        Assert.Single(child, a => a == "--churn-rate");
    }

    [Theory]
    [InlineData("--churn-rate", "-1")]
    [InlineData("--churn-rate", "50", "--ws", "ws://127.0.0.1:8080/mqtt")]
    [InlineData("--churn-rate", "50", "--host", "10.0.0.1")]
    public void Churn_is_refused_out_of_range_or_off_plain_loopback_tcp(params string[] args)
    {
        Assert.False(FleetOptions.TryParse(args, out _, out var error));
        Assert.Contains("--churn-rate", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_fleet_with_churn_connects_every_short_lived_client_and_loses_nothing()
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "None"));
        Assert.True(FleetOptions.TryParse(
            ["--port", host.MqttPort.ToString(CultureInfo.InvariantCulture), "--devices", "10", "--connect-rate", "200", "--interval", "0.05",
             "--jitter", "0.01", "--qos", "1", "--messages-per-device", "40", "--duration", "60", "--verify", "--churn-rate", "100", "--no-progress"],
            out var options, out var error), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        var report = await new FleetScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);

        Assert.True(report.Failures.Count == 0, string.Join("; ", report.Failures.Select(f => $"{f.Key} x{f.Value}")));
        Assert.True(report.ChurnAttempts > 0);
        Assert.Equal(report.ChurnAttempts, report.ChurnConnected);
        Assert.Equal(report.ChurnConnected, report.ChurnLatency.Count);
        Assert.Equal(400, report.Published);
        Assert.Equal((400L, 0L, 0L), (report.Received, report.Lost, report.Duplicates));
        Assert.True(report.Clean);
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
