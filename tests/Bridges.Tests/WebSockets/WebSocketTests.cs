using System.Buffers;
using System.Net;
using System.Text.Json;
using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.WebSockets;

public sealed class WebSocketTests
{
    static string Ch(JsonElement f) => f.GetProperty("ch").GetString()!;

    static string Ev(JsonElement f) => f.GetProperty("ev").GetString()!;

    [Fact]
    public async Task Sub_delivers_messages_per_channel_in_order_and_unsub_stops_them()
    {
        await using var bridges = await TestBridges.StartAsync();
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "devices/+/telemetry" });
        await ws.ReceiveEventAsync("subscribed", "devices/+/telemetry");
        await ws.SendAsync(new { op = "sub", ch = "alerts/#" });
        await ws.ReceiveEventAsync("subscribed", "alerts/#");

        var mqtt = await bridges.ConnectMqttAsync();
        for (var i = 0; i < 20; i++)
        {
            await TestBridges.PublishAsync(mqtt, i % 2 == 0 ? $"devices/d{i}/telemetry" : $"alerts/a{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var frames = new List<JsonElement>();
        while (frames.Count < 20) frames.Add(await ws.ReceiveAsync());
        Assert.All(frames, f => Assert.Equal("msg", Ev(f)));
        var telemetry = frames.Where(f => Ch(f) == "devices/+/telemetry").Select(f => int.Parse(f.GetProperty("data").GetString()!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var alerts = frames.Where(f => Ch(f) == "alerts/#").Select(f => int.Parse(f.GetProperty("data").GetString()!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 2), telemetry);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => i * 2 + 1), alerts);
        Assert.Equal("utf8", frames[0].GetProperty("enc").GetString());
        Assert.StartsWith("devices/d0/telemetry", frames[0].GetProperty("topic").GetString());

        await ws.SendAsync(new { op = "unsub", ch = "alerts/#" });
        await ws.ReceiveEventAsync("unsubscribed", "alerts/#");
        await TestBridges.PublishAsync(mqtt, "alerts/late", "x");
        await TestBridges.PublishAsync(mqtt, "devices/dz/telemetry", "marker");
        var next = await ws.ReceiveAsync();
        Assert.Equal("marker", next.GetProperty("data").GetString());
    }

    [Fact]
    public async Task Resume_per_channel_from_a_position_replays_then_goes_live_without_gap_or_duplicate()
    {
        await using var bridges = await TestBridges.StartAsync();
        var mqtt = await bridges.ConnectMqttAsync();
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "r/#" });
        await ws.ReceiveEventAsync("subscribed");
        for (var i = 0; i < 5; i++) await TestBridges.PublishAsync(mqtt, "r/1", $"m{i}");
        var firstFive = new List<JsonElement>();
        while (firstFive.Count < 5) firstFive.Add(await ws.ReceiveAsync());
        var resumeAt = firstFive[2].GetProperty("id").GetString()!;
        await ws.DisposeAsync();

        var ws2 = await bridges.ConnectWebSocketAsync();
        var publishing = Task.Run(async () =>
        {
            for (var i = 5; i < 60; i++) await TestBridges.PublishAsync(mqtt, "r/1", $"m{i}");
        });
        await ws2.SendAsync(new { op = "sub", ch = "r/#", from = resumeAt });
        var payloads = new List<string>();
        var subscribed = 0;
        while (payloads.Count < 57)
        {
            var f = await ws2.ReceiveAsync();
            if (Ev(f) == "subscribed")
            {
                subscribed++;
                continue;
            }
            Assert.Equal("msg", Ev(f));
            payloads.Add(f.GetProperty("data").GetString()!);
        }
        Assert.Equal(1, subscribed);
        await publishing;
        Assert.Equal(Enumerable.Range(3, 57).Select(i => $"m{i}"), payloads);
    }

    [Fact]
    public async Task Sub_from_earliest_replays_history_and_a_truncated_position_gets_a_gap()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:History:MessagesPerTopic"] = "2" });
        var mqtt = await bridges.ConnectMqttAsync();
        for (var i = 0; i < 4; i++) await TestBridges.PublishAsync(mqtt, "h/1", $"m{i}");
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "h/1", from = "earliest" });
        var a = await ws.ReceiveAsync();
        var b = await ws.ReceiveAsync();
        Assert.Equal(["m2", "m3"], new[] { a, b }.Select(f => f.GetProperty("data").GetString()));
        // "subscribed" follows the replay and says where the channel stands
        var subscribed = await ws.ReceiveAsync();
        Assert.Equal("subscribed", Ev(subscribed));
        Assert.Equal(b.GetProperty("id").GetString(), subscribed.GetProperty("id").GetString());

        var old = bridges.Feed.History.Epoch + "-1";
        await ws.SendAsync(new { op = "sub", ch = "h/#", from = old });
        var gap = await ws.ReceiveAsync();
        Assert.Equal("gap", Ev(gap));
        Assert.Equal("history-truncated", gap.GetProperty("reason").GetString());
        Assert.Equal(old, gap.GetProperty("requested").GetString());
        Assert.Equal(a.GetProperty("id").GetString(), gap.GetProperty("resumedFrom").GetString());
    }

    [Fact]
    public async Task Pub_is_routed_to_mqtt_subscribers_and_acknowledged()
    {
        await using var bridges = await TestBridges.StartAsync();
        var mqtt = await bridges.ConnectMqttAsync();
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        mqtt.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.Topic + "=" + System.Text.Encoding.UTF8.GetString(e.ApplicationMessage.Payload.ToArray()));
            return Task.CompletedTask;
        };
        await mqtt.SubscribeAsync(new MQTTnet.MqttClientFactory().CreateSubscribeOptionsBuilder().WithTopicFilter("cmd/#").Build());
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "cmd/#" });
        await ws.ReceiveEventAsync("subscribed");
        await ws.SendAsync(new { op = "pub", topic = "cmd/d1", data = "reboot", qos = 1, retain = false, req = "r1" });
        var frames = await ws.ReceiveUntilAsync(f => Ev(f) == "puback");
        var ack = frames[^1];
        Assert.Equal("r1", ack.GetProperty("req").GetString());
        Assert.True(ack.GetProperty("ok").GetBoolean());
        Assert.Equal("cmd/d1=reboot", await received.Task.WithTimeout(Timeouts.Default, "the MQTT subscriber to get the browser's publish"));
        // the browser's own publish is in the feed too (it went through the accept stage)
        var echo = frames.Count > 1 ? frames[0] : await ws.ReceiveEventAsync("msg", "cmd/#");
        Assert.Equal("reboot", echo.GetProperty("data").GetString());
    }

    [Fact]
    public async Task Ping_gets_pong_and_bad_commands_get_errors()
    {
        await using var bridges = await TestBridges.StartAsync();
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "ping" });
        Assert.Equal("pong", Ev(await ws.ReceiveAsync()));
        await ws.SendTextAsync("not json");
        Assert.Equal("error", Ev(await ws.ReceiveAsync()));
        await ws.SendAsync(new { op = "sub", ch = "a/#/b" });
        var error = await ws.ReceiveAsync();
        Assert.Equal("error", Ev(error));
        Assert.Equal("a/#/b", Ch(error));
        await ws.SendAsync(new { op = "pub", topic = "a/+", data = "x", req = "bad" });
        var ack = await ws.ReceiveAsync();
        Assert.False(ack.GetProperty("ok").GetBoolean());
        await ws.SendAsync(new { op = "fly" });
        Assert.Equal("error", Ev(await ws.ReceiveAsync()));
    }

    [Fact]
    public async Task Foreign_origin_is_refused_and_listed_origin_is_allowed()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:AllowedOrigins:0"] = "https://dash.example.com" });
        var refused = await Assert.ThrowsAsync<WebSocketRefusedException>(() => bridges.ConnectWebSocketAsync(origin: "https://evil.example.com"));
        Assert.Equal(HttpStatusCode.Forbidden, refused.Status);
        var ok = await bridges.ConnectWebSocketAsync(origin: "https://dash.example.com");
        await ok.SendAsync(new { op = "ping" });
        Assert.Equal("pong", Ev(await ok.ReceiveAsync()));
        var loopback = await bridges.ConnectWebSocketAsync(origin: "http://localhost:3000");
        await loopback.SendAsync(new { op = "ping" });
        Assert.Equal("pong", Ev(await loopback.ReceiveAsync()));
    }

    [Fact]
    public async Task Overflow_under_drop_oldest_tells_the_channel_with_a_gap()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Bridges:WebSocket:QueueLength"] = "4",
            ["Bridges:WebSocket:Overflow"] = "DropOldest",
        });
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "o/#" });
        await ws.ReceiveEventAsync("subscribed");
        // fill the queue straight from the feed, faster than any socket drains, so drops are certain
        var payload = System.Text.Encoding.ASCII.GetBytes(new string('x', 64 * 1024));
        for (var i = 0; i < 400; i++) bridges.Feed.Append("o/1", payload, 0, false, DateTimeOffset.UtcNow);
        var frames = await ws.ReceiveUntilAsync(f => Ev(f) == "gap");
        var gap = frames[^1];
        Assert.Equal("queue-overflow", gap.GetProperty("reason").GetString());
        Assert.Equal("o/#", Ch(gap));
        Assert.True(bridges.Metrics.Gaps("queue-overflow") >= 1);
    }

    [Fact]
    public async Task A_peer_that_stops_answering_pings_is_closed_within_the_idle_timeout()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Bridges:WebSocket:KeepAliveSeconds"] = "1",
            ["Bridges:WebSocket:IdleTimeoutSeconds"] = "2",
        });
        // a client that never reads answers no ping: to the server it is a dead peer
        var silent = await bridges.ConnectWebSocketAsync();
        await Wait.UntilAsync(() => bridges.Metrics.WebSocketsOpen == 1, Timeouts.Default, "the socket to register");
        await Wait.UntilAsync(() => bridges.Metrics.WebSocketsOpen == 0, Timeouts.Default, "the server to close the dead socket");
        GC.KeepAlive(silent);
    }

    [Fact]
    public async Task A_command_longer_than_one_read_is_gathered_and_one_over_the_limit_closes_the_socket()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:WebSocket:MaxMessageBytes"] = "2048" });
        var ws = await bridges.ConnectWebSocketAsync();
        var longTopic = "long/" + new string('t', 1000);
        await ws.SendAsync(new { op = "sub", ch = longTopic });
        Assert.Equal(longTopic, (await ws.ReceiveEventAsync("subscribed")).GetProperty("ch").GetString());
        await ws.SendAsync(new { op = "pub", topic = "x", data = new string('d', 4000), req = "big" });
        var closed = await Assert.ThrowsAsync<WebSocketClosedException>(() => ws.ReceiveAsync());
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.MessageTooBig, closed.Status);
    }

    [Fact]
    public async Task Overflow_under_disconnect_closes_the_socket_with_try_again_later_and_from_resumes()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Bridges:WebSocket:QueueLength"] = "4",
            ["Bridges:WebSocket:Overflow"] = "Disconnect",
            ["Bridges:History:MessagesPerTopic"] = "1000",
            ["Bridges:History:MaxBytes"] = "200000000",
        });
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "o/#" });
        // where the channel starts: a client resumes from here if the socket closes before its first message
        var lastId = (await ws.ReceiveEventAsync("subscribed")).GetProperty("id").GetString();
        var payload = System.Text.Encoding.ASCII.GetBytes(new string('x', 64 * 1024));
        for (var i = 0; i < 300; i++) bridges.Feed.Append("o/1", payload, 0, false, DateTimeOffset.UtcNow);
        var received = 0;
        var closed = await Assert.ThrowsAsync<WebSocketClosedException>(async () =>
        {
            while (true)
            {
                var f = await ws.ReceiveAsync();
                Assert.NotEqual("gap", Ev(f));
                lastId = f.GetProperty("id").GetString();
                received++;
            }
        });
        Assert.Equal((System.Net.WebSockets.WebSocketCloseStatus)1013, closed.Status);
        Assert.True(received < 300);

        var again = await bridges.ConnectWebSocketAsync();
        await again.SendAsync(new { op = "sub", ch = "o/#", from = lastId });
        var rest = 0;
        while (received + rest < 300)
        {
            var f = await again.ReceiveAsync();
            Assert.Equal("msg", Ev(f));
            rest++;
        }
        Assert.Equal("subscribed", Ev(await again.ReceiveAsync()));
    }
}
