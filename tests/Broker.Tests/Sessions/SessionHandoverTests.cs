using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Sessions;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Sessions;

/// <summary>
/// Issue 13 items 3 and 6, the engine's half: a session handed over by one node (<c>MqttBroker.HandOver</c>) and adopted
/// by another (<c>MqttBroker.Adopt</c>, from the snapshot's bytes) resumes there with everything it held, nothing lost or
/// repeated, and its will fires once. Two engines on loopback, each with its own store and data directory.
/// </summary>
public sealed class SessionHandoverTests
{
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;
    const MqttQualityOfServiceLevel Qos2 = MqttQualityOfServiceLevel.ExactlyOnce;

    /// <summary>A persistent session (3.1.1: clean session 0; MQTT 5: expiry 300 s), optionally with a window and a will on status/dev.</summary>
    static Action<MqttConnectPacket> Persistent(MqttProtocolVersion version, ushort receiveMaximum = 0, bool will = false, uint willDelay = 0) => c =>
    {
        if (version == MqttProtocolVersion.V500)
        {
            c.SessionExpiryInterval = 300;
            c.ReceiveMaximum = receiveMaximum;
        }
        if (will)
        {
            c.WillFlag = true;
            c.WillTopic = "status/dev";
            c.WillMessage = Encoding.UTF8.GetBytes("offline");
            c.WillQoS = Qos1;
            c.WillDelayInterval = version == MqttProtocolVersion.V500 ? willDelay : 0;
        }
    };

    static Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectDevAsync(HandoverNode node, MqttProtocolVersion version, Action<MqttConnectPacket> configure) =>
        RawMqttClient.ConnectAsync(node.Port, "dev", version, cleanStart: false, configure: configure);

    /// <summary>Sees wills (status/#) and the client's own publishes (in/#) on one node.</summary>
    static async Task<RawMqttClient> WatcherAsync(HandoverNode node)
    {
        var (watcher, _) = await RawMqttClient.ConnectAsync(node.Port, "watcher");
        await watcher.SubscribeGrantedAsync(1, "status/#", Qos1);
        await watcher.SubscribeGrantedAsync(2, "in/#", Qos1);
        return watcher;
    }

    /// <summary>HandOver on <paramref name="from"/>, then Adopt on <paramref name="to"/> from the snapshot's bytes, as the cluster carries it.</summary>
    static SessionSnapshot Move(HandoverNode from, HandoverNode to, string clientId = "dev")
    {
        var snapshot = from.Broker.HandOver(clientId) ?? throw new Xunit.Sdk.XunitException($"{clientId} has no session to hand over.");
        Assert.False(from.Broker.HasSession(clientId));
        to.Broker.Adopt(SessionSnapshot.Read(snapshot.ToBytes()));
        return snapshot;
    }

    /// <summary>
    /// What a resumed client is sent first: reads until <paramref name="publishes"/> PUBLISHes and <paramref name="releases"/>
    /// PUBRELs came, acknowledging each PUBLISH and completing each PUBREL, as a client does.
    /// </summary>
    static async Task<(List<MqttPublishPacket> Publishes, List<ushort> Releases)> ReceiveResumedAsync(RawMqttClient client, int publishes, int releases)
    {
        var received = new List<MqttPublishPacket>();
        var released = new List<ushort>();
        while (received.Count < publishes || released.Count < releases)
        {
            switch (await client.ReceiveAsync(Timeouts.Default))
            {
                case MqttPublishPacket publish:
                    received.Add(publish);
                    if (publish.QualityOfServiceLevel == Qos1)
                    {
                        await client.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
                    }
                    Assert.NotEqual(Qos2, publish.QualityOfServiceLevel); // none of these tests resends a QoS 2 PUBLISH
                    break;
                case MqttPubRelPacket release:
                    released.Add(release.PacketIdentifier);
                    await client.SendAsync(new MqttPubCompPacket { PacketIdentifier = release.PacketIdentifier });
                    break;
                case var other:
                    throw new Xunit.Sdk.XunitException($"Expected PUBLISH or PUBREL, got {other?.ToString() ?? "the connection closed"}.");
            }
        }
        return (received, released);
    }

    static string Text(MqttMessage message) => Encoding.UTF8.GetString(message.Payload.Span);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_live_persistent_session_moves_to_another_node_with_everything_it_holds(MqttProtocolVersion version)
    {
        var v5 = version == MqttProtocolVersion.V500;
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        await using var watcher1 = await WatcherAsync(node1);
        var (pub1, _) = await RawMqttClient.ConnectAsync(node1.Port, "pub");
        await using var _p1 = pub1;

        // subscriptions: one with a subscription identifier (MQTT 5), one shared, one at QoS 2
        var (first, connAck) = await ConnectDevAsync(node1, version, Persistent(version));
        Assert.False(connAck.IsSessionPresent);
        await first.SubscribeGrantedAsync(1, "t/a", Qos1, subscriptionId: v5 ? 7u : 0);
        await first.SubscribeGrantedAsync(2, "$share/g/t/s", Qos1);
        await first.SubscribeGrantedAsync(3, "t/q2", Qos2);
        await first.DisconnectAsync();

        // queued while the client is offline
        await pub1.PublishAsync("t/a", "m1", Qos1, 1);
        await pub1.PublishAsync("t/q2", "m2", Qos2, 2);
        await pub1.PublishAsync("t/a", "m3", Qos1, 3);
        await pub1.PublishAsync("t/s", "m4", Qos1, 4);
        await pub1.PublishAsync("t/a", "m5", Qos1, 5);

        // back with a window of two (MQTT 5 Receive Maximum; 3.1.1: Broker:MaxInflightOutbound) and a will (MQTT 5: 5 s delay)
        var (dev, resumed) = await ConnectDevAsync(node1, version, Persistent(version, receiveMaximum: 2, will: true, willDelay: 5));
        await using var _d1 = dev;
        Assert.True(resumed.IsSessionPresent);
        var m1 = await dev.ReceiveAsync<MqttPublishPacket>();
        var m2 = await dev.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal(new[] { "m1", "m2" }, new[] { m1.Text(), m2.Text() });
        // m1's PUBACK is withheld; m2 is received (PUBREC) and released (PUBREL), its PUBCOMP withheld
        await dev.SendAsync(new MqttPubRecPacket { PacketIdentifier = m2.PacketIdentifier });
        Assert.Equal(m2.PacketIdentifier, (await dev.ReceiveAsync<MqttPubRelPacket>()).PacketIdentifier);
        // the client's own QoS 2 publish: routed (PUBREC), its PUBREL not yet sent
        await dev.SendAsync(Packets.Publish("in/x", "inbound-1", Qos2, 42));
        Assert.Equal((ushort)42, (await dev.ReceiveAsync<MqttPubRecPacket>()).PacketIdentifier);
        Assert.Equal("inbound-1", (await watcher1.ReceivePublishAsync()).Text());
        // queued while connected: the window is full
        await pub1.PublishAsync("t/a", "m6", Qos1, 6);

        var snapshot = Move(node1, node2);
        var closed = await dev.ExpectClosedAsync();
        if (v5)
        {
            Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, closed?.ReasonCode);
        }
        else
        {
            Assert.Null(closed); // 3.1.1 has no DISCONNECT from the server: the connection is closed
        }
        Assert.Equal(3, snapshot.Subscriptions.Count);
        Assert.Equal(new[] { "m1", "m2" }, snapshot.Inflight.Select(d => Text(d.Message)));
        Assert.Equal(new[] { StoredDeliveryState.AwaitingPubAck, StoredDeliveryState.AwaitingPubComp }, snapshot.Inflight.Select(d => d.State));
        Assert.Equal(new[] { "m3", "m4", "m5", "m6" }, snapshot.Queued.Select(d => Text(d.Message)));
        Assert.Equal(new ushort[] { 42 }, snapshot.InboundQos2);
        if (v5)
        {
            Assert.Equal(5u, snapshot.PendingWill?.DelaySeconds); // waits for its delay on the node the session moved to
        }
        else
        {
            // a 3.1.1 will has no delay: due at the handover, published by the node handing over
            Assert.Null(snapshot.PendingWill);
            Assert.Equal("offline", (await watcher1.ReceivePublishAsync()).Text());
        }

        await using var watcher2 = await WatcherAsync(node2);
        var (pub2, _) = await RawMqttClient.ConnectAsync(node2.Port, "pub");
        await using var _p2 = pub2;
        var (moved, movedAck) = await ConnectDevAsync(node2, version, Persistent(version));
        await using var _d2 = moved;
        Assert.True(movedAck.IsSessionPresent);

        // in flight first: m1 again with DUP and its packet id, m2's PUBREL again; then the queue, in order
        var (publishes, releases) = await ReceiveResumedAsync(moved, publishes: 5, releases: 1);
        Assert.Equal(new[] { "m1", "m3", "m4", "m5", "m6" }, publishes.Select(p => p.Text()));
        Assert.True(publishes[0].Dup);
        Assert.Equal(m1.PacketIdentifier, publishes[0].PacketIdentifier);
        Assert.All(publishes.Skip(1), p => Assert.False(p.Dup));
        Assert.Equal(new[] { m2.PacketIdentifier }, releases);
        if (v5)
        {
            Assert.Equal(new uint[] { 7 }, publishes[0].SubscriptionIdentifiers);
            Assert.Equal(new uint[] { 7 }, publishes[1].SubscriptionIdentifiers);
        }

        // its own QoS 2 publish: a resend is acknowledged and not routed again, its PUBREL completed with success
        await moved.SendAsync(Packets.Publish("in/x", "inbound-1", Qos2, 42, dup: true));
        Assert.Equal((ushort)42, (await moved.ReceiveAsync<MqttPubRecPacket>()).PacketIdentifier);
        await moved.SendAsync(new MqttPubRelPacket { PacketIdentifier = 42 });
        var pubComp = await moved.ReceiveAsync<MqttPubCompPacket>();
        Assert.Equal((ushort)42, pubComp.PacketIdentifier);
        Assert.Equal(MqttPubCompReasonCode.Success, pubComp.ReasonCode);

        // what is published on the new node reaches every subscription, the shared one too
        await pub2.PublishAsync("t/a", "n1", Qos1, 1);
        await pub2.PublishAsync("t/s", "n2", Qos1, 2);
        await pub2.PublishAsync("t/q2", "n3", Qos2, 3);
        var fresh = await moved.ReceivePublishesAsync(3);
        Assert.Equal(new[] { "n1", "n2", "n3" }, fresh.Select(p => p.Text()));
        if (v5)
        {
            Assert.Equal(new uint[] { 7 }, fresh[0].SubscriptionIdentifiers);
        }
        // exactly these: nothing else is on its way to the client
        await moved.ExpectNothingBeforeMarkerAsync();

        if (v5)
        {
            // the resume cancelled the moved will: none before a control will of the same delay, scheduled after it
            var (control, _) = await RawMqttClient.ConnectAsync(node2.Port, "control", cleanStart: false, configure: c =>
            {
                c.SessionExpiryInterval = 60;
                c.WillFlag = true;
                c.WillTopic = "status/control";
                c.WillMessage = Encoding.UTF8.GetBytes("control offline");
                c.WillQoS = Qos1;
                c.WillDelayInterval = 5;
            });
            await control.DisposeAsync();
            Assert.Equal("status/control", (await watcher2.ReceivePublishAsync(Timeouts.Default)).Topic);
        }
        // neither node published the client's message again, nor a will (3.1.1: node 1 published it once, above)
        await watcher2.ExpectNothingBeforeMarkerAsync();
        await watcher1.ExpectNothingBeforeMarkerAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_will_due_at_the_handover_is_published_once_by_the_node_handing_over(MqttProtocolVersion version)
    {
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        await using var watcher1 = await WatcherAsync(node1);
        await using var watcher2 = await WatcherAsync(node2);
        var (dev, _) = await ConnectDevAsync(node1, version, Persistent(version, will: true));
        await using var _d1 = dev;

        var snapshot = Move(node1, node2);
        await dev.ExpectClosedAsync();
        Assert.Null(snapshot.PendingWill);
        Assert.Equal("offline", (await watcher1.ReceivePublishAsync()).Text());

        var (moved, ack) = await ConnectDevAsync(node2, version, Persistent(version));
        await using var _d2 = moved;
        Assert.True(ack.IsSessionPresent);
        await watcher2.ExpectNothingBeforeMarkerAsync();
        await watcher1.ExpectNothingBeforeMarkerAsync();
    }

    [Fact]
    public async Task A_delayed_will_moves_with_the_session_and_fires_once_on_the_new_node_when_the_client_does_not_return()
    {
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        await using var watcher1 = await WatcherAsync(node1);
        await using var watcher2 = await WatcherAsync(node2);
        var (dev, _) = await ConnectDevAsync(node1, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500, will: true, willDelay: 1));
        await using var _d1 = dev;

        var snapshot = Move(node1, node2);
        Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, (await dev.ExpectClosedAsync())?.ReasonCode);
        Assert.NotNull(snapshot.PendingWill);

        Assert.Equal("offline", (await watcher2.ReceivePublishAsync(Timeouts.Default)).Text());
        await watcher2.ExpectNothingBeforeMarkerAsync();
        await watcher1.ExpectNothingBeforeMarkerAsync();
        // the session itself stays, offline, until it expires
        Assert.True(node2.Broker.HasSession("dev"));
    }

    [Fact]
    public async Task A_clean_start_claim_ends_the_session_without_moving_it_and_its_will_is_published_at_once()
    {
        await using var node1 = HandoverNode.Start();
        await using var watcher1 = await WatcherAsync(node1);
        var (dev, _) = await ConnectDevAsync(node1, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500, will: true, willDelay: 300));
        await using var _d1 = dev;
        await dev.SubscribeGrantedAsync(1, "t/a", Qos1);

        Assert.Null(node1.Broker.HandOver("dev", cleanStart: true));
        Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, (await dev.ExpectClosedAsync())?.ReasonCode);
        // a will is sent when its session ends, whatever its delay
        Assert.Equal("offline", (await watcher1.ReceivePublishAsync()).Text());
        Assert.False(node1.Broker.HasSession("dev"));
        Assert.Equal(2, node1.Broker.SubscriptionCount); // only the watcher's two are left

        // the end is in the store: the session does not come back with a restart
        await node1.RestartAsync();
        Assert.False(node1.Broker.HasSession("dev"));
    }

    [Fact]
    public async Task An_adopted_session_survives_a_restart_of_the_node_that_adopted_it()
    {
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        var (pub1, _) = await RawMqttClient.ConnectAsync(node1.Port, "pub");
        await using var _p1 = pub1;
        var (dev, _) = await ConnectDevAsync(node1, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500, receiveMaximum: 1));
        await dev.SubscribeGrantedAsync(1, "t/a", Qos1, subscriptionId: 7);
        await dev.SubscribeGrantedAsync(2, "$share/g/t/s", Qos1);
        await dev.SubscribeGrantedAsync(3, "t/q2", Qos2);
        await pub1.PublishAsync("t/a", "m1", Qos1, 1);
        var m1 = await dev.ReceiveAsync<MqttPublishPacket>(); // in flight, PUBACK withheld; the window of one holds the rest back
        await pub1.PublishAsync("t/q2", "m2", Qos2, 2);
        await pub1.PublishAsync("t/s", "m3", Qos1, 3);
        await dev.SendAsync(Packets.Publish("in/x", "inbound-1", Qos2, 42));
        Assert.Equal((ushort)42, (await dev.ReceiveAsync<MqttPubRecPacket>()).PacketIdentifier);
        // the connection drops: the session is offline when it is handed over
        await dev.DisposeAsync();
        await Wait.UntilAsync(() => node1.Broker.ConnectedClients == 1, Timeouts.Default, "node 1 to see the client drop");

        var snapshot = Move(node1, node2);
        Assert.Single(snapshot.Inflight);
        Assert.Equal(2, snapshot.Queued.Count);
        await node2.RestartAsync();
        await node1.RestartAsync();
        Assert.False(node1.Broker.HasSession("dev"));
        Assert.True(node2.Broker.HasSession("dev"));

        var (moved, ack) = await ConnectDevAsync(node2, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500));
        await using var _d2 = moved;
        Assert.True(ack.IsSessionPresent);
        var (publishes, _) = await ReceiveResumedAsync(moved, publishes: 1, releases: 0);
        Assert.Equal("m1", publishes[0].Text());
        Assert.True(publishes[0].Dup);
        Assert.Equal(m1.PacketIdentifier, publishes[0].PacketIdentifier);
        var rest = await moved.ReceivePublishesAsync(2);
        Assert.Equal(new[] { "m2", "m3" }, rest.Select(p => p.Text()));
        await moved.SendAsync(new MqttPubRelPacket { PacketIdentifier = 42 });
        Assert.Equal(MqttPubCompReasonCode.Success, (await moved.ReceiveAsync<MqttPubCompPacket>()).ReasonCode);

        var (pub2, _) = await RawMqttClient.ConnectAsync(node2.Port, "pub");
        await using var _p2 = pub2;
        await pub2.PublishAsync("t/a", "n1", Qos1, 1);
        var n1 = await moved.ReceivePublishAsync();
        Assert.Equal("n1", n1.Text());
        Assert.Equal(new uint[] { 7 }, n1.SubscriptionIdentifiers);
        await moved.ExpectNothingBeforeMarkerAsync();
    }

    [Fact]
    public async Task A_handover_racing_the_connection_drop_publishes_the_will_once_and_always_moves_the_session()
    {
        // either the drop comes first (its will is published, the session is offline) or the handover does (it publishes
        // the will, and the drop finds the session no longer its own): once either way, and the session always moves
        const int Rounds = 20;
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        await using var watcher1 = await WatcherAsync(node1);
        for (var i = 0; i < Rounds; i++)
        {
            var (dev, _) = await ConnectDevAsync(node1, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500, will: true));
            var drop = Task.Run(async () => await dev.DisposeAsync());
            var snapshot = await Task.Run(() => node1.Broker.HandOver("dev"));
            await drop;
            Assert.NotNull(snapshot);
            Assert.Null(snapshot.PendingWill);
            node2.Broker.Adopt(SessionSnapshot.Read(snapshot.ToBytes()));
            Assert.Equal("offline", (await watcher1.ReceivePublishAsync()).Text());
            // the drop is handled by now or comes later: wait for it before the next round's connection
            await Wait.UntilAsync(() => node1.Broker.ConnectedClients == 1, Timeouts.Default, "node 1 to close the connection");
        }
        await watcher1.ExpectNothingBeforeMarkerAsync();
        Assert.False(node1.Broker.HasSession("dev"));
        Assert.True(node2.Broker.HasSession("dev"));
    }

    [Fact]
    public async Task An_adoption_racing_a_connect_of_the_same_client_id_either_is_resumed_or_takes_the_new_connection_over()
    {
        // the connect attaches first (a new session, which the adoption replaces, closing it with 0x8E) or the adoption
        // does (the connect resumes it): never both sessions, never one without the moved subscription
        const int Rounds = 10;
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        var (pub, _) = await RawMqttClient.ConnectAsync(node2.Port, "pub");
        await using var _p = pub;
        for (var i = 0; i < Rounds; i++)
        {
            var (dev, _) = await ConnectDevAsync(node1, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500));
            await dev.SubscribeGrantedAsync(1, $"t/{i}", Qos1);
            await dev.DisconnectAsync();
            var snapshot = node1.Broker.HandOver("dev")!;

            var adopt = Task.Run(() => node2.Broker.Adopt(snapshot));
            var (moved, ack) = await ConnectDevAsync(node2, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500));
            await adopt;
            if (!ack.IsSessionPresent)
            {
                Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, (await moved.ExpectClosedAsync())?.ReasonCode);
                await moved.DisposeAsync();
                (moved, ack) = await ConnectDevAsync(node2, MqttProtocolVersion.V500, Persistent(MqttProtocolVersion.V500));
                Assert.True(ack.IsSessionPresent);
            }
            await pub.PublishAsync($"t/{i}", $"round {i}", Qos1);
            Assert.Equal($"round {i}", (await moved.ReceivePublishAsync()).Text());
            await moved.ExpectNothingBeforeMarkerAsync();
            // back to node 1 for the next round, through the same calls
            await moved.DisconnectAsync();
            node1.Broker.Adopt(node2.Broker.HandOver("dev")!);
        }
    }

    [Fact]
    public async Task Handing_over_a_client_id_with_no_session_returns_nothing()
    {
        await using var node1 = HandoverNode.Start();
        Assert.Null(node1.Broker.HandOver("nobody"));
        Assert.Null(node1.Broker.HandOver("nobody", cleanStart: true));
    }
}
