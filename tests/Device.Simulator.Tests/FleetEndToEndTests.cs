using System.Globalization;
using IotRealtime.Broker.Host;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Scenarios.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>Short fleet runs against our broker started in-process: every device connects, publishes a bounded count, the verifier sees each message once.</summary>
public sealed class FleetEndToEndTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-fleet-").FullName;

    Task<BrokerHost> StartBrokerAsync() => InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "None"));

    static async Task<FleetReport> RunAsync(params string[] args)
    {
        Assert.True(FleetOptions.TryParse(args, out var options, out var error), error);
        // Bounded by --messages-per-device; --duration and this token only end a run that went wrong.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        return await new FleetScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);
    }

    static void AssertEveryMessageArrivedOnce(FleetReport report, int devices, int perDevice)
    {
        Assert.True(report.Failures.Count == 0, string.Join("; ", report.Failures.Select(f => $"{f.Key} x{f.Value}")));
        Assert.Equal(devices, report.Connected);
        Assert.Equal(0, report.ConnectFailures);
        Assert.Equal(devices * perDevice, report.Published);
        Assert.True(report.Verified);
        Assert.Equal(report.Published, report.Received);
        Assert.Equal(0, report.Lost);
        Assert.Equal(0, report.Duplicates);
        Assert.Equal(report.Received, report.EndToEndLatency.Count);
        Assert.True(report.Clean);
    }

    [Theory]
    [InlineData("3.1.1")]
    [InlineData("5")]
    public async Task Twenty_devices_over_tcp_at_qos_1_lose_nothing(string protocol)
    {
        await using var host = await StartBrokerAsync();

        var report = await RunAsync("--port", host.MqttPort.ToString(CultureInfo.InvariantCulture), "--protocol", protocol,
            "--devices", "20", "--connect-rate", "200", "--interval", "0.05", "--jitter", "0.02", "--qos", "1",
            "--messages-per-device", "20", "--duration", "60", "--verify", "--will-topic-pattern", "devices/{0}/status", "--no-progress");

        AssertEveryMessageArrivedOnce(report, 20, 20);
        Assert.Equal(400, report.PublishAckLatency.Count);
        Assert.Equal(20, report.ConnectLatency.Count);
    }

    [Fact]
    public async Task Twenty_devices_over_websocket_lose_nothing()
    {
        await using var host = await StartBrokerAsync();

        var report = await RunAsync("--ws", $"ws://127.0.0.1:{host.HttpPort.ToString(CultureInfo.InvariantCulture)}/mqtt",
            "--devices", "20", "--connect-rate", "200", "--interval", "0.05", "--jitter", "0.02", "--qos", "1",
            "--messages-per-device", "10", "--duration", "60", "--verify", "--no-progress");

        AssertEveryMessageArrivedOnce(report, 20, 10);
        Assert.StartsWith("ws://", report.Transport, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_shard_runs_only_its_devices_and_the_verifier_ignores_the_others()
    {
        await using var host = await StartBrokerAsync();

        var report = await RunAsync("--port", host.MqttPort.ToString(CultureInfo.InvariantCulture), "--devices", "30", "--shard", "1/3",
            "--connect-rate", "200", "--interval", "0.05", "--jitter", "0", "--qos", "2", "--messages-per-device", "5", "--duration", "60",
            "--verify", "--session", "persistent", "--no-progress");

        AssertEveryMessageArrivedOnce(report, 10, 5);
        Assert.Equal("1/3", report.Shard);
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
