using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// Issue 13 items 3 and 6: a client id is live on one node of the cluster; connecting to another node takes the session
/// over with everything it holds. Real nodes a, b and c in this process, raw MQTT clients.
/// </summary>
public sealed class SessionTakeoverTests(ThreeNodeCluster cluster) : IClassFixture<ThreeNodeCluster>
{
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;
    readonly ClusterNodes _nodes = cluster.Nodes;

    static Action<MqttConnectPacket> Persistent(MqttProtocolVersion version) => c =>
    {
        if (version == MqttProtocolVersion.V500) c.SessionExpiryInterval = 300;
    };

    MqttBroker Engine(string node) => _nodes[node].Host.Services.GetRequiredService<MqttBroker>();

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_live_client_connecting_to_another_node_takes_its_session_over(MqttProtocolVersion version)
    {
        var id = $"live-{version}";
        var (first, ack1) = await RawMqttClient.ConnectAsync(_nodes["a"].MqttPort, id, version, cleanStart: false, Persistent(version));
        await using var _1 = first;
        Assert.False(ack1.IsSessionPresent);
        await first.SubscribeGrantedAsync(1, $"live/{version}", Qos1);

        var (second, ack2) = await RawMqttClient.ConnectAsync(_nodes["b"].MqttPort, id, version, cleanStart: false, Persistent(version));
        await using var _2 = second;
        Assert.Equal(MqttConnectReasonCode.Success, ack2.ReasonCode);
        Assert.True(ack2.IsSessionPresent);
        var closed = await first.ExpectClosedAsync();
        if (version == MqttProtocolVersion.V500)
        {
            Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, closed?.ReasonCode);
        }
        else
        {
            Assert.Null(closed); // 3.1.1: the connection is closed
        }
        Assert.False(Engine("a").HasSession(id));
        Assert.True(Engine("b").HasSession(id));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_persistent_session_moves_with_subscriptions_queued_and_inflight_messages(MqttProtocolVersion version)
    {
        var id = $"moving-{version}";
        var topic = $"moving/{version}";
        var (dev, _) = await RawMqttClient.ConnectAsync(_nodes["a"].MqttPort, id, version, cleanStart: false, Persistent(version));
        await dev.SubscribeGrantedAsync(1, topic, Qos1);
        // a second subscriber on a: once it has a message, the session's copy is queued there too (same routing pass)
        var (watcher, _) = await RawMqttClient.ConnectAsync(_nodes["a"].MqttPort, $"watch-{version}", version);
        await using var _w = watcher;
        await watcher.SubscribeGrantedAsync(1, topic, Qos1);
        await _nodes.WaitForRouteAsync("c", "a", topic);

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["c"], version);
        await publisher.PublishAsync(topic, "m1", Qos1);
        // m1 is received and not acknowledged: in flight when the client goes away
        Assert.Equal("m1", (await dev.ReceiveAsync<MqttPublishPacket>()).Text());
        await dev.DisposeAsync();
        await Wait.UntilAsync(() => Engine("a").GetSession(id) is { Online: false }, Timeouts.Default, "the session offline on a");
        await publisher.PublishAsync(topic, "m2", Qos1);
        await publisher.PublishAsync(topic, "m3", Qos1);
        foreach (var m in new[] { "m1", "m2", "m3" })
        {
            Assert.Equal(m, (await watcher.ReceivePublishAsync()).Text());
        }

        var (moved, ack) = await RawMqttClient.ConnectAsync(_nodes["b"].MqttPort, id, version, cleanStart: false, Persistent(version));
        await using var _m = moved;
        Assert.True(ack.IsSessionPresent);
        var received = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var p = await moved.ReceivePublishAsync();
            received.Add(p.Text() + (p.Dup ? "+dup" : ""));
        }
        // m1 again with DUP (it was in flight), then the ones queued while offline
        Assert.Equal(new[] { "m1+dup", "m2", "m3" }, received);

        // its subscription now routes to b, not a: a publish on c reaches it on b, and the marker proves nothing else came
        await _nodes.WaitForRouteAsync("c", "b", topic);
        await publisher.PublishAsync(topic, "m4", Qos1);
        var m4 = await moved.ReceivePublishAsync();
        Assert.Equal("m4", m4.Text());
        Assert.False(m4.Dup);
        Assert.False(Engine("a").HasSession(id));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_clean_start_on_another_node_ends_the_old_session(MqttProtocolVersion version)
    {
        var id = $"clean-{version}";
        var (dev, _) = await RawMqttClient.ConnectAsync(_nodes["a"].MqttPort, id, version, cleanStart: false, Persistent(version));
        await dev.SubscribeGrantedAsync(1, $"clean/{version}", Qos1);
        await dev.DisposeAsync();
        await Wait.UntilAsync(() => Engine("a").GetSession(id) is { Online: false }, Timeouts.Default, "the session offline on a");

        var (fresh, ack) = await RawMqttClient.ConnectAsync(_nodes["b"].MqttPort, id, version, cleanStart: true);
        await using var _f = fresh;
        Assert.Equal(MqttConnectReasonCode.Success, ack.ReasonCode);
        Assert.False(ack.IsSessionPresent);
        Assert.False(Engine("a").HasSession(id));
    }

    [Fact]
    public async Task Two_connects_for_one_id_on_two_nodes_at_once_leave_one_session()
    {
        for (var round = 0; round < 5; round++)
        {
            var id = $"race-{round}";
            var onA = RawMqttClient.ConnectAsync(_nodes["a"].MqttPort, id, MqttProtocolVersion.V500, cleanStart: false, Persistent(MqttProtocolVersion.V500));
            var onB = RawMqttClient.ConnectAsync(_nodes["b"].MqttPort, id, MqttProtocolVersion.V500, cleanStart: false, Persistent(MqttProtocolVersion.V500));
            var (ca, ackA) = await onA;
            var (cb, ackB) = await onB;
            await using var _a = ca;
            await using var _b = cb;
            Assert.Equal(MqttConnectReasonCode.Success, ackA.ReasonCode);
            Assert.Equal(MqttConnectReasonCode.Success, ackB.ReasonCode);
            // exactly one was taken over by the other: it is closed with 0x8E, and one node holds the session
            Assert.True(ackA.IsSessionPresent ^ ackB.IsSessionPresent);
            var (winner, other, loser) = ackA.IsSessionPresent ? ("a", "b", cb) : ("b", "a", ca);
            Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, (await loser.ExpectClosedAsync())?.ReasonCode);
            Assert.True(Engine(winner).HasSession(id));
            Assert.False(Engine(other).HasSession(id));
        }
    }

    static Action<MqttConnectPacket> WithWill(string topic, uint delay) => c =>
    {
        c.SessionExpiryInterval = 300;
        c.WillFlag = true;
        c.WillTopic = topic;
        c.WillMessage = "offline"u8.ToArray();
        c.WillQoS = Qos1;
        c.WillDelayInterval = delay;
    };

    [Fact]
    public async Task A_delayed_will_does_not_fire_when_the_client_resumes_on_another_node_within_the_delay()
    {
        const string id = "will-resumed";
        var (watcher, _) = await RawMqttClient.ConnectAsync(_nodes["c"].MqttPort, "will-watch-1");
        await using var _w = watcher;
        await watcher.SubscribeGrantedAsync(1, "will1/#", Qos1);
        await _nodes.WaitForRouteEverywhereAsync("c", "will1/#");
        var (dev, _) = await RawMqttClient.ConnectAsync(_nodes["a"].MqttPort, id, cleanStart: false, configure: WithWill("will1/dev", 300));
        await dev.DisposeAsync(); // dropped without DISCONNECT: the will is pending for its delay
        await Wait.UntilAsync(() => Engine("a").GetSession(id) is { Online: false, WillPending: true }, Timeouts.Default, "the will pending on a");

        var (moved, ack) = await RawMqttClient.ConnectAsync(_nodes["b"].MqttPort, id, cleanStart: false, configure: Persistent(MqttProtocolVersion.V500));
        await using var _m = moved;
        Assert.True(ack.IsSessionPresent);
        // the will moved with the session and the resume cancelled it: no node holds it any more
        Assert.False(Engine("a").HasSession(id));
        Assert.False(Engine("b").GetSession(id)?.WillPending);
        await using var marker = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await marker.PublishAsync("will1/marker", "marker", Qos1);
        Assert.Equal("marker", (await watcher.ReceivePublishAsync()).Text());
    }

    [Fact]
    public async Task A_delayed_will_fires_once_cluster_wide_when_the_client_taken_over_on_another_node_does_not_come_back()
    {
        const string id = "will-moved";
        var (watcher, _) = await RawMqttClient.ConnectAsync(_nodes["c"].MqttPort, "will-watch-2");
        await using var _w = watcher;
        await watcher.SubscribeGrantedAsync(1, "will2/#", Qos1);
        await _nodes.WaitForRouteEverywhereAsync("c", "will2/#");
        var (dev, _) = await RawMqttClient.ConnectAsync(_nodes["a"].MqttPort, id, cleanStart: false, configure: WithWill("will2/dev", 2));
        // taken over on b by a connection with the same will that then drops: a's will is cancelled by the resume, b's fires
        // once its delay has passed, and nothing fires twice
        var (moved, ack) = await RawMqttClient.ConnectAsync(_nodes["b"].MqttPort, id, cleanStart: false, configure: WithWill("will2/dev", 2));
        Assert.True(ack.IsSessionPresent);
        Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, (await dev.ExpectClosedAsync())?.ReasonCode);
        await dev.DisposeAsync();
        await moved.DisposeAsync();
        Assert.Equal("offline", (await watcher.ReceivePublishAsync(TimeSpan.FromSeconds(30))).Text());
        await using var marker = await MqttTestClient.ConnectAsync(_nodes["a"]);
        await marker.PublishAsync("will2/marker", "marker", Qos1);
        Assert.Equal("marker", (await watcher.ReceivePublishAsync()).Text());
    }
}
