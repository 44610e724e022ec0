using System.Diagnostics;
using System.Text.RegularExpressions;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit.Abstractions;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// Two broker processes as a cluster (Development membership on the first); the second is killed with SIGKILL. The
/// first declares it dead, drops its routes and goes on serving. The detection time is printed (docs/cluster.md), not asserted.
/// </summary>
public sealed partial class KilledNodeTests(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-cluster-kill-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_killed_node_is_declared_dead_its_routes_go_and_the_survivor_serves_on()
    {
        var primarySilo = BrokerProcess.FreePort();
        var (mqtt1, http1, mqtt2) = (BrokerProcess.FreePort(), BrokerProcess.FreePort(), BrokerProcess.FreePort());
        await using var first = await BrokerProcess.StartAsync(Path.Combine(_dir, "n1"), mqtt1, $"Listeners:HttpPort={http1}",
            "Cluster:Enabled=true", "Cluster:NodeId=n1", $"Cluster:SiloPort={primarySilo}");
        await using var second = await BrokerProcess.StartAsync(Path.Combine(_dir, "n2"), mqtt2,
            "Cluster:Enabled=true", "Cluster:NodeId=n2", $"Cluster:SiloPort={BrokerProcess.FreePort()}", $"Cluster:PrimaryEndpoint=127.0.0.1:{primarySilo}");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http1}/") };

        using var subscriber = new MqttClientFactory().CreateMqttClient();
        await subscriber.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", mqtt2).WithClientId("on-n2").Build());
        await subscriber.SubscribeAsync("kill/t", MqttQualityOfServiceLevel.AtLeastOnce);
        await WaitForMetricAsync(http, "iotrealtime_cluster_remote_routes", 1, "n1 to learn n2's route");

        using var publisher = new MqttClientFactory().CreateMqttClient();
        await publisher.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", mqtt1).WithClientId("pub-n1").Build());

        second.Kill();
        var clock = Stopwatch.StartNew();
        // while the dead node is still a member with a matching route, publishers on the survivor are not held up:
        // every QoS 1 message is acknowledged, crossings wait in the dead peer's bounded queue
        for (var i = 0; i < 100; i++)
        {
            var ack = await publisher.PublishStringAsync("kill/t", "during", MqttQualityOfServiceLevel.AtLeastOnce);
            Assert.True(ack.IsSuccess);
        }
        output.WriteLine($"100 QoS 1 publishes acknowledged {clock.Elapsed.TotalMilliseconds:F0} ms after the kill; n2's route then still known: {await MetricAsync(http, "iotrealtime_cluster_remote_routes") == 1}");
        await WaitForMetricAsync(http, "iotrealtime_cluster_remote_routes", 0, "n1 to drop the killed node's routes", TimeSpan.FromSeconds(60));
        output.WriteLine($"SIGKILLed node declared dead and its routes removed after {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(0, await MetricAsync(http, "iotrealtime_cluster_peers"));

        // the survivor goes on serving its own clients
        using var local = new MqttClientFactory().CreateMqttClient();
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        local.ApplicationMessageReceivedAsync += _ =>
        {
            received.TrySetResult();
            return Task.CompletedTask;
        };
        await local.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", mqtt1).WithClientId("on-n1").Build());
        await local.SubscribeAsync("kill/t", MqttQualityOfServiceLevel.AtLeastOnce);
        await local.PublishStringAsync("kill/t", "after", MqttQualityOfServiceLevel.AtLeastOnce);
        await received.Task.WaitAsync(Timeouts.Default);
        await local.DisconnectAsync();
    }

    static async Task<double> MetricAsync(HttpClient http, string name)
    {
        var text = await http.GetStringAsync("metrics");
        var match = Regex.Match(text, "^" + Regex.Escape(name) + " (\\S+)$", RegexOptions.Multiline);
        return match.Success ? double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : double.NaN;
    }

    static async Task WaitForMetricAsync(HttpClient http, string name, double value, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Timeouts.Default);
        while (await MetricAsync(http, name) != value)
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"Timed out waiting for {what} ({name} = {value}).");
            await Task.Delay(50);
        }
    }
}
