using System.Text.Json;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Operations;

public sealed class PresenceTests
{
    [Fact]
    public async Task Connect_disconnect_and_will_appear_in_the_presence_feed()
    {
        await using var broker = await TestBroker.StartAsync();
        using var feed = broker.Host.Broker.SubscribePresence();

        var client = await MqttTestClient.ConnectAsync(broker, clientId: "presence-1", configure: o => o.WithCredentials("bob", "x"));
        await client.DisposeAsync();
        var (dying, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "presence-2", configure: c =>
        {
            c.WillFlag = true;
            c.WillTopic = "wills/presence-2";
            c.WillMessage = "gone"u8.ToArray();
        });
        await dying.DisposeAsync(); // no DISCONNECT: the will is published

        var events = new List<PresenceEvent>();
        using var timeout = new CancellationTokenSource(Timeouts.Default);
        await foreach (var e in feed.ReadAllAsync(timeout.Token))
        {
            events.Add(e);
            if (events.Count == 5) break;
        }

        // each client's events come in order; how the two clients' events interleave is not fixed (the first
        // client's DISCONNECT is handled while the second connects)
        var first = events.Where(e => e.ClientId == "presence-1").ToList();
        var second = events.Where(e => e.ClientId == "presence-2").ToList();
        Assert.Equal([PresenceEventKind.Connected, PresenceEventKind.Disconnected], first.Select(e => e.Kind));
        Assert.Equal(PresenceEventKind.Connected, second[0].Kind);
        Assert.Equal("bob", first[0].Username);
        Assert.Equal("tcp", first[0].Transport);
        Assert.Equal("5.0", first[0].ProtocolVersion);
        Assert.Equal("ClientDisconnect", first[1].Reason);
        Assert.True(first[1].Clean);
        // the will goes out as the connection closes; which event the feed gets first is not fixed
        var will = Assert.Single(second.Skip(1), e => e.Kind == PresenceEventKind.WillPublished);
        Assert.Equal("wills/presence-2", will.Topic);
        var lost = Assert.Single(second.Skip(1), e => e.Kind == PresenceEventKind.Disconnected);
        Assert.Equal("ConnectionLost", lost.Reason);
        Assert.False(lost.Clean);
    }

    [Fact]
    public async Task Presence_topics_are_published_under_sys()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var watcher = await MqttTestClient.ConnectAsync(broker, clientId: "presence-watcher");
        await watcher.SubscribeAsync("$SYS/broker/clients/+/+", MqttQualityOfServiceLevel.AtMostOnce);

        var device = await MqttTestClient.ConnectAsync(broker, clientId: "presence-device");
        var connected = await watcher.WaitForMessageAsync("$SYS/broker/clients/presence-device/connected", Timeouts.Default);
        await device.DisposeAsync();
        var disconnected = await watcher.WaitForMessageAsync("$SYS/broker/clients/presence-device/disconnected", Timeouts.Default);

        var up = JsonDocument.Parse(connected.Payload).RootElement;
        Assert.Equal("presence-device", up.GetProperty("clientId").GetString());
        Assert.True(up.GetProperty("online").GetBoolean());
        Assert.Equal("connected", up.GetProperty("event").GetString());
        Assert.False(connected.Retain);
        var down = JsonDocument.Parse(disconnected.Payload).RootElement;
        Assert.False(down.GetProperty("online").GetBoolean());
        Assert.Equal("ClientDisconnect", down.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task Presence_topics_can_be_turned_off()
    {
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string?> { ["Broker:PresenceTopics"] = "false" });
        await using var watcher = await MqttTestClient.ConnectAsync(broker, clientId: "presence-watcher-off");
        await watcher.SubscribeAsync("$SYS/broker/clients/+/+", MqttQualityOfServiceLevel.AtMostOnce);
        using var feed = broker.Host.Broker.SubscribePresence();

        await watcher.SubscribeAsync("presence/marker", MqttQualityOfServiceLevel.AtMostOnce);
        await using (await MqttTestClient.ConnectAsync(broker, clientId: "presence-quiet")) { }
        using var timeout = new CancellationTokenSource(Timeouts.Default);
        await foreach (var e in feed.ReadAllAsync(timeout.Token))
        {
            if (e is { Kind: PresenceEventKind.Disconnected, ClientId: "presence-quiet" }) break; // the feed still has it
        }
        // a presence topic is routed before its feed event, and one session's deliveries keep their order
        await watcher.PublishAsync("presence/marker", "m", MqttQualityOfServiceLevel.AtMostOnce);
        await watcher.WaitForMessageAsync("presence/marker", Timeouts.Default);

        Assert.DoesNotContain(watcher.Received, m => m.Topic.Contains("presence-quiet", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_slow_feed_reader_loses_the_oldest_events_not_memory()
    {
        await using var server = EngineServer.Start();
        using var feed = server.Broker.SubscribePresence(capacity: 2);

        for (var i = 0; i < 3; i++)
        {
            var (client, _) = await RawMqttClient.ConnectAsync(server.Port, $"slow-{i}");
            await client.SendAsync(new MQTTnet.Packets.MqttDisconnectPacket());
            await client.ExpectClosedAsync();
            await client.DisposeAsync();
        }
        await Wait.UntilAsync(() => feed.Dropped == 4, Timeouts.Default, "four dropped events");

        Assert.True(feed.Reader.TryRead(out var first));
        Assert.Equal((PresenceEventKind.Connected, "slow-2"), (first.Kind, first.ClientId));
    }
}
