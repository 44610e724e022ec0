using System.Globalization;
using System.Text.Json;
using IotRealtime.Broker.Host;
using IotRealtime.Device.Simulator.Scenarios;
using IotRealtime.Device.Simulator.Scenarios.Bench;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The fanout, p2p, shared, latency and connect scenarios, small, against our broker started in-process.</summary>
public sealed class BenchEndToEndTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-bench-").FullName;

    Task<BrokerHost> StartBrokerAsync() => InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "None"));

    [Theory]
    [InlineData("fanout", 0, new[] { "--subscribers", "10" }, 10)]
    [InlineData("fanout", 1, new[] { "--subscribers", "10" }, 10)]
    [InlineData("p2p", 1, new[] { "--publishers", "5" }, 1)]
    [InlineData("shared", 1, new[] { "--publishers", "4", "--subscribers", "3" }, 1)]
    [InlineData("latency", 1, new[] { "--publishers", "2", "--rate", "2000" }, 1)]
    public async Task Scenario_delivers_every_message_exactly_once(string scenario, int qos, string[] extra, int deliveriesPerMessage)
    {
        await using var host = await StartBrokerAsync();
        string[] args = ["--port", host.MqttPort.ToString(CultureInfo.InvariantCulture), "--qos", qos.ToString(CultureInfo.InvariantCulture),
                         "--messages", "1000", "--inflight", "100", "--duration", "60"];
        Assert.True(SimulatorOptions.TryParse([scenario, .. args, .. extra], out var options, out var error), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        var report = await new BenchScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);

        Assert.Equal(0, report.ConnectFailures);
        Assert.False(report.Stalled);
        Assert.Equal(1000, report.Published);
        Assert.Equal(1000L * deliveriesPerMessage, report.Deliveries);
        Assert.Equal(0, report.Lost);
        Assert.Equal(0, report.Duplicates);
        Assert.Equal(0, report.SubscribersWithLoss);
        Assert.Equal(1000L * deliveriesPerMessage, report.EndToEndMicros.Count);
        Assert.True(report.Clean);
    }

    [Fact]
    public async Task Connect_storm_reports_every_connection_and_its_latency()
    {
        await using var host = await StartBrokerAsync();
        var json = Path.Combine(_dir, "connect.json");
        Assert.True(SimulatorOptions.TryParse(
            ["connect", "--port", host.MqttPort.ToString(CultureInfo.InvariantCulture), "--connections", "50", "--rate", "500", "--hold", "0",
             "--source-base", "none", "--json", json],
            out var options, out var error), error);

        var exit = await new IdleScenario(options, TimeProvider.System, TextWriter.Null).RunAsync(CancellationToken.None);

        Assert.Equal(0, exit);
        using var report = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(50, report.RootElement.GetProperty("connected").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("failed").GetInt32());
        Assert.Equal(50, report.RootElement.GetProperty("connect_latency").GetProperty("count").GetInt32());
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
