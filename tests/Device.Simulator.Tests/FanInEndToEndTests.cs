using IotRealtime.Broker.Host;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The fan-in scenario against our broker started in-process on ephemeral loopback ports.</summary>
public sealed class FanInEndToEndTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-fanin-").FullName;

    [Theory]
    [InlineData(1, "clean", "None")]
    [InlineData(2, "clean", "None")]
    [InlineData(1, "persistent", "Write")]
    public async Task Closed_loop_fan_in_delivers_every_message_exactly_once(int qos, string session, string durability)
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", durability));

        Assert.True(SimulatorOptions.TryParse(
            ["fanin", "--port", host.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--publishers", "5",
             "--qos", qos.ToString(System.Globalization.CultureInfo.InvariantCulture), "--messages", "2000", "--inflight", "100",
             "--duration", "60", "--subscriber-session", session],
            out var options, out var error), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        var report = await new FanInScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);

        Assert.Equal(0, report.ConnectFailures);
        Assert.False(report.Stalled);
        Assert.Equal(2000, report.Published);
        Assert.Equal(2000, report.Received);
        Assert.Equal(2000, report.Acked);
        Assert.Equal(0, report.Lost);
        Assert.Equal(0, report.Duplicates);
        Assert.Equal(2000, report.EndToEndLatency.Count);
        Assert.True(report.Clean);
    }

    [Fact]
    public async Task Qos_0_with_a_window_per_publisher_counts_what_it_sent_and_received()
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "None"));

        Assert.True(SimulatorOptions.TryParse(
            ["fanin", "--port", host.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--publishers", "5",
             "--qos", "0", "--messages", "2000", "--ahead", "50", "--duration", "60"],
            out var options, out var error), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        var report = await new FanInScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);

        // 5 x 50 ahead stays far below the broker's per-subscriber queue, so nothing is dropped here.
        Assert.Equal(0, report.ConnectFailures);
        Assert.False(report.Stalled);
        Assert.Equal((50, 0), (report.Ahead, report.Inflight));
        Assert.Equal(2000, report.Published);
        Assert.Equal(2000, report.Received);
        Assert.Equal((0L, 0.0), (report.Lost, report.LostPercent));
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
