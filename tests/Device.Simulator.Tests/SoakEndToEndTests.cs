using System.Globalization;
using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.Soak;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The soak clients against our broker in-process: they ride through client resets and a broker restart, and every acknowledged message arrives.</summary>
public sealed class SoakEndToEndTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-soak-").FullName;

    static SimulatorOptions Options(int port, params string[] more)
    {
        string[] args = ["soak", "--port", port.ToString(CultureInfo.InvariantCulture), "--publishers", "4", "--rate", "400", "--inflight", "20", .. more];
        Assert.True(SimulatorOptions.TryParse(args, out var options, out var error), error);
        return options;
    }

    static void AssertNothingAcknowledgedWasLost(SoakReport report)
    {
        Assert.True(report.Acknowledged > 0);
        Assert.True(report.Published == report.Acknowledged, $"unacknowledged: {string.Join(", ", report.UnacknowledgedSamples)}");
        Assert.Equal(0, report.UnacknowledgedAtEnd);
        Assert.Equal(0, report.AcknowledgedLost);
        Assert.Equal(0, report.DuplicatesQos2);
        Assert.Equal(0, report.PacketIdsReused);
        Assert.Equal(0, report.SessionsLost);
        Assert.Equal((2, 2), (report.PublishersQos1, report.PublishersQos2));
        Assert.True(report.Clean);
    }

    [Fact]
    public async Task Clients_reset_without_disconnect_resend_and_lose_nothing_acknowledged()
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "Write"));
        var options = Options(host.MqttPort, "--client-kill-every", "1", "--churn-rate", "20", "--duration", "4");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        var report = await new SoakScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);

        AssertNothingAcknowledgedWasLost(report);
        Assert.True(report.ClientKills >= 1, $"client kills {report.ClientKills}");
        Assert.True(report.ChurnAttempts > 0);
        Assert.Equal(report.ChurnAttempts, report.ChurnConnected);
    }

    [Fact]
    public async Task Every_client_comes_back_to_its_session_after_a_broker_restart_on_the_same_data()
    {
        var data = Path.Combine(_dir, "data");
        var host = await InProcessBroker.StartAsync(data, ("Store:Durability", "Write"));
        var port = host.MqttPort;
        try
        {
            var scenario = new SoakScenario(Options(port, "--duration", "6"), TimeProvider.System, TextWriter.Null);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            var run = scenario.RunReportAsync(timeout.Token);
            await scenario.Started.WaitAsync(timeout.Token);

            await host.DisposeAsync();
            host = await InProcessBroker.StartAsync(data, ("Store:Durability", "Write"), ("Listeners:MqttPort", port.ToString(CultureInfo.InvariantCulture)));
            var report = await run;

            AssertNothingAcknowledgedWasLost(report);
            // All five clients were connected when the broker stopped; each came back to the session it had.
            Assert.True(report.Reconnects >= 5, $"reconnects {report.Reconnects}");
        }
        finally
        {
            await host.DisposeAsync();
        }
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
