using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Host;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Scenarios.Fleet;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The raw device mode against our broker in-process over real loopback sockets: telemetry, commands, reconnects, several brokers.</summary>
public sealed class RawFleetEndToEndTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-raw-").FullName;

    Task<BrokerHost> StartBrokerAsync(string name, int port = 0) =>
        InProcessBroker.StartAsync(Path.Combine(_dir, name), ("Store:Durability", "None"), ("Listeners:MqttPort", port.ToString(CultureInfo.InvariantCulture)));

    static FleetScenario Scenario(params string[] args)
    {
        Assert.True(FleetOptions.TryParse(args, out var options, out var error), error);
        return new FleetScenario(options, TimeProvider.System, TextWriter.Null);
    }

    static string Port(BrokerHost host) => host.MqttPort.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Raw_devices_connect_publish_at_qos_1_and_the_verifier_sees_each_message_once()
    {
        await using var host = await StartBrokerAsync("a");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        var report = await Scenario("--mode", "raw", "--port", Port(host), "--devices", "50", "--connect-rate", "500", "--interval", "0.05",
            "--jitter", "0.02", "--qos", "1", "--messages-per-device", "10", "--duration", "60", "--verify", "--username", "fleet", "--password", "secret",
            "--will-topic-pattern", "devices/{0}/status", "--no-progress").RunReportAsync(timeout.Token);

        Assert.True(report.Failures.Count == 0, string.Join("; ", report.Failures.Select(f => $"{f.Key} x{f.Value}")));
        Assert.Equal("raw", report.Mode);
        Assert.Equal(50, report.Connected);
        Assert.Equal(500, report.Published);
        Assert.Equal(500, report.PublishAckLatency.Count);
        Assert.Equal(500, report.Received);
        Assert.Equal(0, report.Lost);
        Assert.Equal(0, report.Duplicates);
        Assert.True(report.ConnectsPerSecond > 0);
        Assert.True(report.Clean);
    }

    [Fact]
    public async Task Raw_devices_at_qos_0_publish_their_count()
    {
        await using var host = await StartBrokerAsync("a");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        var report = await Scenario("--mode", "raw", "--port", Port(host), "--devices", "20", "--connect-rate", "500", "--interval", "0.02",
            "--jitter", "0", "--qos", "0", "--messages-per-device", "5", "--duration", "60", "--verify", "--no-progress").RunReportAsync(timeout.Token);

        Assert.Equal(20, report.Connected);
        Assert.Equal(100, report.Published);
        Assert.Equal(100, report.Received);
        Assert.Equal(0, report.Duplicates);
    }

    [Fact]
    public async Task Raw_devices_count_the_commands_sent_to_their_command_topic()
    {
        await using var host = await StartBrokerAsync("a");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var scenario = Scenario("--mode", "raw", "--port", Port(host), "--devices", "20", "--connect-rate", "500", "--interval", "3600",
            "--jitter", "0", "--qos", "1", "--duration", "90", "--no-progress");
        var run = scenario.RunReportAsync(timeout.Token);
        await Until.TrueAsync(() => scenario.Counters.Subscribed == 20, "20 command subscriptions granted");

        using var commander = new MqttClientFactory().CreateMqttClient();
        await commander.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", host.MqttPort).WithClientId("commander").Build(), timeout.Token);
        for (var i = 0; i < 20; i++)
        {
            await commander.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"devices/dev-{i:D6}/commands/reboot").WithPayload("{}")
                .WithQualityOfServiceLevel(i % 2 == 0 ? MqttQualityOfServiceLevel.AtLeastOnce : MqttQualityOfServiceLevel.AtMostOnce).Build(), timeout.Token);
        }

        await Until.TrueAsync(() => scenario.Counters.Commands == 20, "20 commands received");
        await timeout.CancelAsync();
        var report = await run;

        Assert.Equal(20, report.CommandsReceived);
        Assert.Equal(20, report.Connected);
        Assert.Equal(0, report.ConnectFailures);
    }

    [Fact]
    public async Task Raw_devices_reconnect_with_backoff_after_the_broker_drops_them()
    {
        var port = FreePort();
        var broker = await StartBrokerAsync("first", port);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var scenario = Scenario("--mode", "raw", "--port", port.ToString(CultureInfo.InvariantCulture), "--devices", "10", "--connect-rate", "500",
            "--interval", "0.05", "--jitter", "0", "--qos", "1", "--reconnect-min", "0.1", "--reconnect-max", "0.5", "--duration", "90", "--verify", "--no-progress");
        var run = scenario.RunReportAsync(timeout.Token);
        FleetReport report;
        try
        {
            await Until.TrueAsync(() => scenario.Counters.Online == 10 && scenario.Counters.Published >= 20, "10 devices online and publishing");
            await broker.DisposeAsync();
            await Until.TrueAsync(() => scenario.Counters.Disconnects >= 10, "every device to notice the broker went away");

            broker = await StartBrokerAsync("second", port);
            await Until.TrueAsync(() => scenario.Counters.Reconnects >= 10 && scenario.Counters.Online == 10, "every device back on the new broker");
            var before = scenario.Counters.Published;
            await Until.TrueAsync(() => scenario.Counters.Published >= before + 20, "publishing on the new broker");
        }
        finally
        {
            await timeout.CancelAsync();
            report = await run;
            await broker.DisposeAsync();
        }

        Assert.Equal(10, report.Connected);
        Assert.True(report.Disconnects >= 10, $"disconnects {report.Disconnects}");
        Assert.True(report.Reconnects >= 10, $"reconnects {report.Reconnects}");
        Assert.Contains(report.Failures.Keys, k => k.StartsWith("connection lost", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("mqttnet")]
    public async Task Hosts_spread_the_devices_over_two_brokers_by_device_index(string mode)
    {
        await using var a = await StartBrokerAsync("a");
        await using var b = await StartBrokerAsync("b");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var seenOnA = new ConcurrentDictionary<string, int>();
        var seenOnB = new ConcurrentDictionary<string, int>();
        using var watchA = await WatchTelemetryAsync(a, seenOnA, timeout.Token);
        using var watchB = await WatchTelemetryAsync(b, seenOnB, timeout.Token);

        var report = await Scenario("--mode", mode, "--hosts", $"127.0.0.1:{Port(a)},127.0.0.1:{Port(b)}", "--devices", "10", "--connect-rate", "500",
            "--interval", "0.05", "--jitter", "0", "--qos", "1", "--messages-per-device", "3", "--duration", "60", "--no-progress").RunReportAsync(timeout.Token);
        await Until.TrueAsync(() => seenOnA.Values.Sum() + seenOnB.Values.Sum() == 30, "30 messages at the two brokers");

        Assert.Equal(mode, report.Mode);
        Assert.Equal(30, report.Published);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"devices/dev-{2 * i:D6}/telemetry").Order(), seenOnA.Keys.Order());
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"devices/dev-{2 * i + 1:D6}/telemetry").Order(), seenOnB.Keys.Order());
        Assert.All(seenOnA.Values.Concat(seenOnB.Values), n => Assert.Equal(3, n));
    }

    static async Task<IMqttClient> WatchTelemetryAsync(BrokerHost host, ConcurrentDictionary<string, int> seen, CancellationToken cancellationToken)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            seen.AddOrUpdate(e.ApplicationMessage.Topic, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        };
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", host.MqttPort).WithClientId($"watch-{host.MqttPort}").Build(), cancellationToken);
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("devices/+/telemetry", MqttQualityOfServiceLevel.AtLeastOnce).Build(), cancellationToken);
        return client;
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
