using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT 5 §3.1.2.4 / §4.1, 3.1.1 §3.1.2.4 / §4.1: session state, clean start, session expiry, takeover, client identifiers.</summary>
public sealed class SessionTests
{
    const MqttQualityOfServiceLevel Qos0 = MqttQualityOfServiceLevel.AtMostOnce;
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;
    const MqttQualityOfServiceLevel Qos2 = MqttQualityOfServiceLevel.ExactlyOnce;

    /// <summary>A persistent session: clean session 0 in 3.1.1, clean start 0 with a session expiry in MQTT 5.</summary>
    static Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectPersistentAsync(EngineServer server, string clientId, MqttProtocolVersion version, uint expiry = 300) =>
        RawMqttClient.ConnectAsync(server.Port, clientId, version, cleanStart: false, configure: c => c.SessionExpiryInterval = version == MqttProtocolVersion.V500 ? expiry : 0);

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Session_present_is_false_for_a_new_session_and_true_when_resumed(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (first, connAck) = await ConnectPersistentAsync(server, "dev", version);
        Assert.False(connAck.IsSessionPresent);
        await first.DisconnectAsync();

        var (second, resumed) = await ConnectPersistentAsync(server, "dev", version);
        Assert.True(resumed.IsSessionPresent);
        await second.DisconnectAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Clean_start_discards_the_existing_session(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (first, _) = await ConnectPersistentAsync(server, "dev", version);
        await first.SubscribeGrantedAsync(1, "t", Qos1);
        await first.DisconnectAsync();

        var (clean, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", version, cleanStart: true);
        Assert.False(connAck.IsSessionPresent);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("t", "nobody listens", Qos1);
        await clean.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await clean.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Subscriptions_survive_a_reconnect_to_a_persistent_session(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (first, _) = await ConnectPersistentAsync(server, "dev", version);
        await first.SubscribeGrantedAsync(1, "cmd/#", Qos1);
        await first.DisconnectAsync();

        var (second, connAck) = await ConnectPersistentAsync(server, "dev", version);
        Assert.True(connAck.IsSessionPresent);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("cmd/reboot", "now", Qos1);
        var delivered = await second.ReceivePublishAsync();
        Assert.Equal("cmd/reboot", delivered.Topic);
        Assert.Equal("now", delivered.Text());
        await pub.DisposeAsync();
        await second.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Qos1_and_qos2_messages_published_while_offline_are_delivered_in_order_after_reconnect(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await ConnectPersistentAsync(server, "dev", version);
        await sub.SubscribeGrantedAsync(1, "data", Qos2);
        await sub.DisconnectAsync();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        for (var i = 0; i < 10; i++)
        {
            await pub.PublishAsync("data", $"m{i}", i % 2 == 0 ? Qos1 : Qos2, packetId: (ushort)(i + 1));
        }

        var (again, connAck) = await ConnectPersistentAsync(server, "dev", version);
        Assert.True(connAck.IsSessionPresent);
        var messages = await again.ReceivePublishesAsync(10);
        for (var i = 0; i < 10; i++)
        {
            var delivered = messages[i];
            Assert.Equal($"m{i}", delivered.Text());
            Assert.Equal(i % 2 == 0 ? Qos1 : Qos2, delivered.QualityOfServiceLevel);
        }
        await again.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await again.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Qos0_messages_are_not_queued_for_an_offline_session_by_default(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await ConnectPersistentAsync(server, "dev", version);
        await sub.SubscribeGrantedAsync(1, "data", Qos1);
        await sub.DisconnectAsync();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.PublishAsync("data", "qos0", Qos0);
        await pub.PublishAsync("data", "qos1", Qos1);

        var (again, _) = await ConnectPersistentAsync(server, "dev", version);
        var delivered = await again.ReceivePublishAsync();
        Assert.Equal("qos1", delivered.Text());
        await again.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Qos0_messages_are_queued_for_an_offline_session_when_configured()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, QueueQos0WhenOffline = true });
        var (sub, _) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        await sub.SubscribeGrantedAsync(1, "data", Qos1);
        await sub.DisconnectAsync();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("data", "qos0", Qos0);

        var (again, _) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        var delivered = await again.ReceivePublishAsync();
        Assert.Equal("qos0", delivered.Text());
        Assert.Equal(Qos0, delivered.QualityOfServiceLevel);
        await pub.DisposeAsync();
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Queued_message_that_expires_while_the_session_is_offline_is_not_delivered()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        await sub.SubscribeGrantedAsync(1, "data", Qos1);
        await sub.DisconnectAsync();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("data", "short-lived", Qos1, packetId: 1, configure: p => p.MessageExpiryInterval = 1);
        var expiresAt = DateTime.UtcNow.AddSeconds(1);
        await pub.PublishAsync("data", "long-lived", Qos1, packetId: 2, configure: p => p.MessageExpiryInterval = 3600);
        // a condition on the clock, not a sleep: the first message's expiry must have passed
        await Wait.UntilAsync(() => DateTime.UtcNow > expiresAt.AddMilliseconds(200), TimeSpan.FromSeconds(5), "the queued message to expire");

        var (again, _) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        var delivered = await again.ReceivePublishAsync();
        Assert.Equal("long-lived", delivered.Text());
        // the expiry interval sent on is what is left of it (MQTT-3.3.2-6)
        Assert.InRange(delivered.MessageExpiryInterval, 3500u, 3599u);
        await again.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Session_is_discarded_after_its_expiry_interval()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500, expiry: 1);
        await sub.SubscribeGrantedAsync(1, "data", Qos1);
        await sub.DisconnectAsync();
        Assert.Equal(1, server.Broker.SessionCount);
        await Wait.UntilAsync(() => server.Broker.SessionCount == 0, TimeSpan.FromSeconds(5), "the session to expire");

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("data", "after expiry", Qos1);

        var (again, connAck) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        Assert.False(connAck.IsSessionPresent);
        await again.ExpectNothingBeforeMarkerAsync();
        // the subscription went with the session
        await pub.PublishAsync("data", "still nobody", Qos1, packetId: 2);
        await again.ExpectNothingBeforeMarkerAsync();
        await pub.DisposeAsync();
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Session_expiry_zero_ends_the_session_with_the_connection()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 0);
        await sub.SubscribeGrantedAsync(1, "data", Qos1);
        await sub.DisconnectAsync();
        await Wait.UntilAsync(() => server.Broker.SessionCount == 0, TimeSpan.FromSeconds(5), "the session to end");

        var (again, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 0);
        Assert.False(connAck.IsSessionPresent);
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Session_expiry_set_on_disconnect_keeps_the_session()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 10);
        await sub.SubscribeGrantedAsync(1, "data", Qos1);
        await sub.DisconnectAsync(sessionExpiry: 300);

        var (again, connAck) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        Assert.True(connAck.IsSessionPresent);
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Session_expiry_zero_on_disconnect_ends_the_session_at_once()
    {
        await using var server = EngineServer.Start();
        var (client, _) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500, expiry: 300);
        await client.SubscribeGrantedAsync(1, "data", Qos1);
        // MQTTnet leaves a zero Session Expiry Interval out of DISCONNECT, so it goes as bytes: reason 0, properties { session expiry 0 }
        await client.SendRawAsync([0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00]);
        await client.ExpectClosedAsync();
        await client.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.SessionCount == 0, TimeSpan.FromSeconds(5), "the session to end");

        var (again, connAck) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        Assert.False(connAck.IsSessionPresent);
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Session_expiry_on_disconnect_after_connecting_with_zero_is_a_protocol_error()
    {
        // MQTT 5 §3.14.2.2.2: a non-zero Session Expiry Interval on DISCONNECT when CONNECT had zero is a Protocol Error
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 0);
        await client.SendAsync(new MqttDisconnectPacket { ReasonCode = MqttDisconnectReasonCode.NormalDisconnection, SessionExpiryInterval = 60 });
        var disconnect = await client.ExpectClosedAsync();
        Assert.Equal(MqttDisconnectReasonCode.ProtocolError, disconnect?.ReasonCode);
        await client.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.SessionCount == 0, TimeSpan.FromSeconds(5), "the session to end");
    }

    [Fact]
    public async Task Session_expiry_above_the_maximum_is_capped_and_the_granted_value_returned()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxSessionExpiryInterval = 60 });
        var (capped, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 3600);
        Assert.Equal(60u, connAck.SessionExpiryInterval);
        await capped.DisposeAsync();

        var (within, withinAck) = await RawMqttClient.ConnectAsync(server.Port, "dev2", cleanStart: false, configure: c => c.SessionExpiryInterval = 30);
        Assert.Equal(0u, withinAck.SessionExpiryInterval); // absent: the client's own value stands
        await within.DisposeAsync();
    }

    [Fact]
    public async Task Session_takeover_sends_disconnect_0x8E_to_the_old_connection_and_closes_it()
    {
        await using var server = EngineServer.Start();
        var (first, _) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        await first.SubscribeGrantedAsync(1, "data", Qos1);

        var (second, connAck) = await ConnectPersistentAsync(server, "dev", MqttProtocolVersion.V500);
        Assert.Equal(MqttConnectReasonCode.Success, connAck.ReasonCode);
        Assert.True(connAck.IsSessionPresent);
        var disconnect = await first.ExpectClosedAsync();
        Assert.NotNull(disconnect);
        Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, disconnect.ReasonCode);

        // the new connection owns the session, subscriptions included
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.PublishAsync("data", "to the new one", Qos1);
        Assert.Equal("to the new one", (await second.ReceivePublishAsync()).Text());
        Assert.Equal(2, server.Broker.ConnectedClients);
        await first.DisposeAsync();
        await second.DisposeAsync();
        await pub.DisposeAsync();
    }

    [Fact]
    public async Task Session_takeover_closes_the_old_connection_in_mqtt_311()
    {
        await using var server = EngineServer.Start();
        var (first, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", MqttProtocolVersion.V311);
        var (second, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", MqttProtocolVersion.V311);
        Assert.Equal(MqttConnectReturnCode.ConnectionAccepted, connAck.ReturnCode);
        // 3.1.1 has no server DISCONNECT: the old connection is simply closed
        Assert.Null(await first.ExpectClosedAsync());
        await second.SubscribeGrantedAsync(1, "t", Qos0);
        await first.DisposeAsync();
        await second.DisposeAsync();
    }

    [Fact]
    public async Task Empty_client_id_with_clean_session_0_is_refused_in_mqtt_311()
    {
        await using var server = EngineServer.Start();
        // MQTTnet refuses to encode this CONNECT, so it goes as bytes: protocol level 4, flags 0 (clean session 0), keep alive 60, client id ""
        var client = await RawMqttClient.OpenAsync(server.Port, MqttProtocolVersion.V311);
        await client.SendRawAsync([0x10, 0x0C, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x00, 0x00, 0x3C, 0x00, 0x00]);
        var connAck = await client.ReceiveAsync<MqttConnAckPacket>();
        Assert.Equal(MqttConnectReturnCode.ConnectionRefusedIdentifierRejected, connAck.ReturnCode);
        Assert.Equal(2, (int)connAck.ReturnCode);
        Assert.False(connAck.IsSessionPresent);
        await client.ExpectClosedAsync();
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Empty_client_id_with_clean_session_1_is_accepted_in_mqtt_311()
    {
        await using var server = EngineServer.Start();
        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, "", MqttProtocolVersion.V311, cleanStart: true);
        Assert.Equal(MqttConnectReturnCode.ConnectionAccepted, connAck.ReturnCode);
        await client.SubscribeGrantedAsync(1, "t", Qos1);
        await client.DisposeAsync();
    }

    [Fact]
    public async Task Empty_client_id_gets_an_assigned_client_identifier_in_mqtt_5()
    {
        await using var server = EngineServer.Start();
        var (a, ackA) = await RawMqttClient.ConnectAsync(server.Port, "");
        var (b, ackB) = await RawMqttClient.ConnectAsync(server.Port, "");
        Assert.Equal(MqttConnectReasonCode.Success, ackA.ReasonCode);
        Assert.False(string.IsNullOrEmpty(ackA.AssignedClientIdentifier));
        Assert.False(string.IsNullOrEmpty(ackB.AssignedClientIdentifier));
        Assert.NotEqual(ackA.AssignedClientIdentifier, ackB.AssignedClientIdentifier);
        // both stay connected: distinct ids, no takeover
        await a.SubscribeGrantedAsync(1, "t", Qos0);
        await b.SubscribeGrantedAsync(1, "t", Qos0);
        await a.DisposeAsync();
        await b.DisposeAsync();
    }

    [Fact]
    public async Task Assigned_client_identifier_resumes_its_session_on_reconnect()
    {
        await using var server = EngineServer.Start();
        // MQTT 5 allows an empty client id with clean start 0 (MQTT-3.1.3-6/7); MQTTnet will not encode it, so it goes as bytes:
        // protocol level 5, flags 0, keep alive 60, properties { session expiry 300 }, client id ""
        var first = await RawMqttClient.OpenAsync(server.Port);
        await first.SendRawAsync([0x10, 0x12, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x05, 0x00, 0x00, 0x3C, 0x05, 0x11, 0x00, 0x00, 0x01, 0x2C, 0x00, 0x00]);
        var connAck = await first.ReceiveAsync<MqttConnAckPacket>();
        Assert.Equal(MqttConnectReasonCode.Success, connAck.ReasonCode);
        var assigned = connAck.AssignedClientIdentifier;
        Assert.False(string.IsNullOrEmpty(assigned));
        await first.SubscribeGrantedAsync(1, "data", Qos1);
        await first.DisconnectAsync();

        var (again, resumed) = await RawMqttClient.ConnectAsync(server.Port, assigned, cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        Assert.True(resumed.IsSessionPresent);
        Assert.Null(resumed.AssignedClientIdentifier);
        await again.DisposeAsync();
    }

    [Fact]
    public async Task Client_id_given_by_the_client_is_not_echoed_as_assigned()
    {
        await using var server = EngineServer.Start();
        var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, "mine");
        Assert.Null(connAck.AssignedClientIdentifier);
        await client.DisposeAsync();
    }
}
