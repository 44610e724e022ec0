using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>A node that joins gets the whole retained set of the cluster, in batches, and serves it at subscribe time.</summary>
public sealed class RetainedJoinSyncTests
{
    const int Retained = 100_000;

    // the test's own retained topics: a node also retains $SYS topics of its own
    static int SyncCount(MqttBroker engine) => engine.Retained.Match("sync/#", DateTimeOffset.UtcNow).Count;

    [Fact]
    public async Task A_joining_node_gets_100000_retained_messages_and_live_traffic_flows_meanwhile()
    {
        await using var nodes = await ClusterNodes.StartAsync(["a", "b"]);
        var a = nodes["a"];
        using (var client = new MqttClientFactory().CreateMqttClient())
        {
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", a.MqttPort).WithClientId("seed").Build());
            for (var i = 0; i < Retained; i++)
            {
                await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"sync/{i % 100}/{i}").WithPayload("p" + i).WithRetainFlag().Build());
            }
            await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("sync-end").WithPayload("end").WithRetainFlag()
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            await client.DisconnectAsync();
        }
        var engineA = a.Host.Services.GetRequiredService<MqttBroker>();
        Assert.Equal(Retained, SyncCount(engineA));
        // b got them live, as they were set
        var engineB = nodes["b"].Host.Services.GetRequiredService<MqttBroker>();
        await Wait.UntilAsync(() => SyncCount(engineB) == Retained, TimeSpan.FromSeconds(60), "node b to store every retained message");

        var c = await nodes.AddAsync("c");
        await nodes.WaitUntilMeshedAsync();
        // live traffic from b to a subscriber on c is served while c's sync runs
        await using var live = await MqttTestClient.ConnectAsync(c);
        await live.SubscribeAsync("live/x", MqttQualityOfServiceLevel.AtLeastOnce);
        await nodes.WaitForRouteAsync("b", "c", "live/x");
        await using var publisher = await MqttTestClient.ConnectAsync(nodes["b"]);
        await publisher.PublishAsync("live/x", "hello", MqttQualityOfServiceLevel.AtLeastOnce);
        await live.WaitForMessageAsync("live/x", Timeouts.Default);

        var engineC = c.Host.Services.GetRequiredService<MqttBroker>();
        await Wait.UntilAsync(() => SyncCount(engineC) == Retained, TimeSpan.FromSeconds(60), "node c to store every retained message");
        Assert.All(nodes.Node("c").Peers, p => Assert.Equal(0, p.RetainedSyncLeft));

        await using var subscriber = await MqttTestClient.ConnectAsync(c);
        await subscriber.SubscribeAsync("sync/7/#", MqttQualityOfServiceLevel.AtMostOnce);
        await Wait.UntilAsync(() => subscriber.Received.Count == Retained / 100, Timeouts.Default, "the retained messages of sync/7/#");
        Assert.Equal(Enumerable.Range(0, Retained).Where(i => i % 100 == 7).Select(i => "p" + i).Order(),
            subscriber.Received.Select(m => m.Payload).Order());
        Assert.All(subscriber.Received, m => Assert.True(m.Retain));
    }
}
