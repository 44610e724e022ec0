using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// A node that restarts on its data directory brings its persistent sessions back without splitting a client id: it
/// keeps those no other node owns, and drops its stale copy of one that a client took elsewhere while it was down.
/// </summary>
public sealed class RestartedOwnerTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-owner-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_restarted_node_keeps_the_sessions_nobody_took_and_drops_the_ones_taken_elsewhere()
    {
        var store = new Dictionary<string, string?> { ["Data:Directory"] = _dir, ["Store:Durability"] = "Write" };
        await using var nodes = await ClusterNodes.StartAsync(["p", "r"]);
        await nodes.AddAsync("q", store);
        await nodes.WaitUntilMeshedAsync();
        string[] all = ["p", "q", "r"];
        // the moved id's home is not q, so its record survives q's restart at a node that stayed
        var moved = Enumerable.Range(0, 100).Select(i => $"moved-{i}").First(id => SessionOwnership.Home(id, all) != "q");
        const string kept = "kept-0";
        foreach (var id in new[] { moved, kept })
        {
            var (dev, ack) = await RawMqttClient.ConnectAsync(nodes["q"].MqttPort, id, cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
            Assert.False(ack.IsSessionPresent);
            await dev.SubscribeGrantedAsync(1, $"restart/{id}", MqttQualityOfServiceLevel.AtLeastOnce);
            await dev.DisposeAsync();
        }
        await Wait.UntilAsync(() => Engine(nodes, "q").GetSession(moved) is { Online: false } && Engine(nodes, "q").GetSession(kept) is { Online: false },
            Timeouts.Default, "both sessions offline on q");

        await nodes.StopAsync("q");
        await Wait.UntilAsync(() => nodes.Node("r").Peers.All(p => p.Node != "q") && nodes.Node("p").Peers.All(p => p.Node != "q"),
            TimeSpan.FromSeconds(60), "q gone from the membership");
        var (live, liveAck) = await RawMqttClient.ConnectAsync(nodes["r"].MqttPort, moved, cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        await using var _l = live;
        Assert.False(liveAck.IsSessionPresent); // its owner is gone: a new session

        await nodes.AddAsync("q", store);
        await nodes.WaitUntilMeshedAsync();
        // q restored both; it drops the one r owns now and keeps the other
        await Wait.UntilAsync(() => !Engine(nodes, "q").HasSession(moved), Timeouts.Default, "q to drop its stale copy");
        Assert.True(Engine(nodes, "r").GetSession(moved) is { Online: true });
        Assert.True(Engine(nodes, "q").HasSession(kept));
        await Wait.UntilAsync(() => Ownership(nodes, SessionOwnership.Home(kept, all)).OwnerOf(kept) == "q", Timeouts.Default, "q registered as owner of the kept id");

        // the kept session moves to r with its subscription when its client connects there
        var (back, backAck) = await RawMqttClient.ConnectAsync(nodes["r"].MqttPort, kept, cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        await using var _b = back;
        Assert.True(backAck.IsSessionPresent);
        Assert.Equal(1, Engine(nodes, "r").GetSession(kept)?.Subscriptions);
        Assert.False(Engine(nodes, "q").HasSession(kept));
    }

    static MqttBroker Engine(ClusterNodes nodes, string id) => nodes[id].Host.Services.GetRequiredService<MqttBroker>();

    static SessionOwnership Ownership(ClusterNodes nodes, string id) => (SessionOwnership)nodes[id].Host.Services.GetRequiredService<IClusterSessions>();
}
