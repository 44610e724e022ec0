using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT 5 §3.1.2.5 / §3.1.3.2, 3.1.1 §3.1.2.5: will messages, Will Delay Interval, DISCONNECT with will message.</summary>
public sealed class WillTests
{
    // housekeeping runs at most once a second in the engine's contract: allow a few of them
    static readonly TimeSpan WillTimeout = TimeSpan.FromSeconds(5);
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;

    static Action<MqttConnectPacket> WithWill(string topic = "status/dev", string payload = "offline", uint delay = 0, uint sessionExpiry = 0) => c =>
    {
        c.WillFlag = true;
        c.WillTopic = topic;
        c.WillMessage = Encoding.UTF8.GetBytes(payload);
        c.WillQoS = Qos1;
        c.WillDelayInterval = delay;
        c.SessionExpiryInterval = sessionExpiry;
    };

    static async Task<RawMqttClient> WatcherAsync(EngineServer server, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var (watcher, _) = await RawMqttClient.ConnectAsync(server.Port, "watcher", version);
        await watcher.SubscribeGrantedAsync(1, "status/#", Qos1);
        return watcher;
    }

    /// <summary>
    /// Proves no will reached <paramref name="watcher"/> that was due before one of <paramref name="delay"/> seconds
    /// scheduled now: a control device with such a will drops, its will must be the next message, and the watcher's
    /// own marker then follows anything housekeeping published in the same round. Unlike a quiet period, a slow
    /// machine only makes this wait longer.
    /// </summary>
    static async Task ExpectNoWillBeforeAControlWillAsync(EngineServer server, RawMqttClient watcher, uint delay)
    {
        var (control, _) = await RawMqttClient.ConnectAsync(server.Port, "control", cleanStart: false,
            configure: WithWill("status/control", "control offline", delay, sessionExpiry: 60));
        await control.DisposeAsync();
        Assert.Equal("status/control", (await watcher.ReceivePublishAsync(Timeouts.Default)).Topic);
        await watcher.ExpectNothingBeforeMarkerAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Will_is_sent_when_the_connection_drops_without_disconnect(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server, version);
        var (device, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", version, configure: WithWill());
        Assert.Equal(MqttConnectReasonCode.Success, connAck.ReasonCode);

        await device.DisposeAsync();
        var will = await watcher.ReceivePublishAsync(WillTimeout);
        Assert.Equal("status/dev", will.Topic);
        Assert.Equal("offline", will.Text());
        Assert.Equal(Qos1, will.QualityOfServiceLevel);
        await watcher.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Will_is_not_sent_after_clean_disconnect(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server, version);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", version, configure: WithWill());

        await device.DisconnectAsync();
        // the broker publishes a will as it ends the connection, before it stops counting it
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 1, Timeouts.Default, "the broker to end the device's connection");
        await watcher.ExpectNothingBeforeMarkerAsync();
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_is_sent_after_disconnect_with_will_message_reason()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", configure: WithWill());

        await device.DisconnectAsync(MqttDisconnectReasonCode.DisconnectWithWillMessage);
        var will = await watcher.ReceivePublishAsync(WillTimeout);
        Assert.Equal("offline", will.Text());
        await watcher.DisposeAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Will_is_sent_when_the_broker_closes_a_silent_connection_after_keep_alive(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server, version);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", version, configure: c =>
        {
            WithWill()(c);
            c.KeepAlivePeriod = 1;
        });

        // the device sends nothing: after 1.5 x keep alive the broker closes the connection, which is not a clean disconnect
        await device.ExpectClosedAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("offline", (await watcher.ReceivePublishAsync(WillTimeout)).Text());
        await device.DisposeAsync();
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_without_delay_is_sent_when_a_new_connection_takes_the_session_over()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (first, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: WithWill(sessionExpiry: 60));
        var (second, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 60);
        Assert.True(connAck.IsSessionPresent);
        Assert.Equal("offline", (await watcher.ReceivePublishAsync(WillTimeout)).Text());
        // no second copy: the taken-over connection has ended (watcher and second remain) and nothing else came before the marker
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 2, Timeouts.Default, "the taken-over connection to end");
        await watcher.ExpectNothingBeforeMarkerAsync();
        await first.DisposeAsync();
        await second.DisposeAsync();
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Retained_will_is_stored_as_a_retained_message()
    {
        await using var server = EngineServer.Start();
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", configure: c =>
        {
            WithWill()(c);
            c.WillRetain = true;
        });
        await device.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.Retained.Count == 1, WillTimeout, "the retained will");

        var watcher = await WatcherAsync(server);
        var will = await watcher.ReceivePublishAsync();
        Assert.Equal("offline", will.Text());
        Assert.True(will.Retain);
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_delay_holds_the_will_back_until_the_delay_has_passed()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: WithWill(delay: 2, sessionExpiry: 60));

        var dropped = DateTime.UtcNow;
        await device.DisposeAsync();
        // a will sent early would be the message read here, and arrive before the delay: the assertion below catches it
        var will = await watcher.ReceivePublishAsync(WillTimeout);
        Assert.Equal("offline", will.Text());
        Assert.True(DateTime.UtcNow - dropped >= TimeSpan.FromSeconds(1.9), $"will arrived after {(DateTime.UtcNow - dropped).TotalSeconds:0.00} s, before its 2 s delay");
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_is_not_sent_when_the_client_reconnects_within_the_will_delay()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: WithWill(delay: 2, sessionExpiry: 60));
        await device.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 1, WillTimeout, "the broker to see the drop");

        var (again, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 60);
        Assert.True(connAck.IsSessionPresent);
        // the reconnect cancelled the will: none before a 2 s will scheduled after it
        await ExpectNoWillBeforeAControlWillAsync(server, watcher, delay: 2);
        await again.DisposeAsync();
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Delayed_will_is_sent_when_the_client_reconnects_with_clean_start_before_the_delay()
    {
        // clean start ends the old session, and a will is sent when its session ends even if the delay has not passed
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: WithWill(delay: 30, sessionExpiry: 300));
        await device.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 1, WillTimeout, "the broker to see the drop");
        await watcher.ExpectNothingBeforeMarkerAsync();

        var (again, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: true);
        Assert.False(connAck.IsSessionPresent);
        Assert.Equal("offline", (await watcher.ReceivePublishAsync(WillTimeout)).Text());
        await again.DisposeAsync();
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_message_expiry_counts_from_when_the_will_is_published_not_from_connect()
    {
        // MQTT 5 §3.1.3.2.4: the Will Message Expiry Interval is used as the Publication Expiry Interval when the will is published
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", configure: c =>
        {
            WithWill()(c);
            c.WillMessageExpiryInterval = 1;
        });
        var connectedAt = DateTime.UtcNow;
        // connected for longer than the expiry interval (a condition on the clock, not a sleep)
        await Wait.UntilAsync(() => DateTime.UtcNow > connectedAt.AddSeconds(1.3), TimeSpan.FromSeconds(5), "the device to stay connected past the will's expiry interval");
        await device.DisposeAsync();

        var will = await watcher.ReceivePublishAsync(WillTimeout);
        Assert.Equal("offline", will.Text());
        Assert.Equal(1u, will.MessageExpiryInterval);
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_properties_are_forwarded_with_the_will_message()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", configure: c =>
        {
            WithWill()(c);
            c.WillContentType = "text/plain";
            c.WillResponseTopic = "status/reply";
            c.WillCorrelationData = [1, 2, 3];
            c.WillUserProperties = [new MqttUserProperty("site", Encoding.UTF8.GetBytes("north").AsMemory())];
        });
        await device.DisposeAsync();

        var will = await watcher.ReceivePublishAsync(WillTimeout);
        Assert.Equal("text/plain", will.ContentType);
        Assert.Equal("status/reply", will.ResponseTopic);
        Assert.Equal([1, 2, 3], will.CorrelationData);
        var property = Assert.Single(will.UserProperties);
        Assert.Equal(("site", "north"), (property.Name, property.ReadValueAsString()));
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Delayed_will_is_not_sent_when_a_new_connection_takes_the_session_over()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (first, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: WithWill(delay: 2, sessionExpiry: 60));
        var (second, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 60);
        Assert.True(connAck.IsSessionPresent);
        Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, (await first.ExpectClosedAsync())?.ReasonCode);
        // the takeover resumed the session, which cancels a delayed will: none before a 2 s will scheduled after it
        await ExpectNoWillBeforeAControlWillAsync(server, watcher, delay: 2);
        await first.DisposeAsync();
        await second.DisposeAsync();
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_with_delay_longer_than_session_expiry_is_sent_when_the_session_ends()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: false, configure: WithWill(delay: 30, sessionExpiry: 1));

        var dropped = DateTime.UtcNow;
        await device.DisposeAsync();
        var will = await watcher.ReceivePublishAsync(WillTimeout);
        Assert.Equal("offline", will.Text());
        var after = DateTime.UtcNow - dropped;
        Assert.True(after >= TimeSpan.FromSeconds(0.9), $"will arrived after {after.TotalSeconds:0.00} s, before the 1 s session expiry");
        await Wait.UntilAsync(() => server.Broker.SessionCount == 1, WillTimeout, "the expired session to be removed");
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_delay_is_cut_short_when_the_session_ends_on_disconnect()
    {
        // session expiry 0: the session ends with the connection, and so the will is due at once (MQTT-3.1.3-9)
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (device, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", configure: WithWill(delay: 30, sessionExpiry: 0));
        await device.DisposeAsync();
        Assert.Equal("offline", (await watcher.ReceivePublishAsync(WillTimeout)).Text());
        await watcher.DisposeAsync();
    }

    [Fact]
    public async Task Will_of_a_taken_over_connection_is_sent_when_the_new_connection_starts_clean()
    {
        await using var server = EngineServer.Start();
        var watcher = await WatcherAsync(server);
        var (first, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", configure: WithWill(sessionExpiry: 60));
        var (second, _) = await RawMqttClient.ConnectAsync(server.Port, "dev", cleanStart: true);
        var disconnect = await first.ExpectClosedAsync();
        Assert.Equal(MqttDisconnectReasonCode.SessionTakenOver, disconnect?.ReasonCode);
        Assert.Equal("offline", (await watcher.ReceivePublishAsync(WillTimeout)).Text());
        await first.DisposeAsync();
        await second.DisposeAsync();
        await watcher.DisposeAsync();
    }
}
