using System.Net;
using System.Net.Http.Json;
using IotRealtime.Bridges.Auth;
using IotRealtime.Bridges.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Bridges.Tests.Auth;

/// <summary>With a password file the bridges need a token, and the broker's ACL for the token's user decides.</summary>
public sealed class TokenAndAclTests : IDisposable
{
    readonly TestUsers _users = TestUsers.Create(("alice", "wonderland"), ("bob", "builder"), ("carol", "singer"), ("dave", "diver"));

    /// <summary>The HMAC key the bridges sign tokens with, fixed so a test can sign one the way the server does.</summary>
    static readonly byte[] TokenKey = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];

    public void Dispose() => _users.Dispose();

    Task<TestBridges> StartAsync(string? tokenKey = null) => TestBridges.StartAsync(new Dictionary<string, string?>
    {
        ["Auth:PasswordFile"] = _users.PasswordFile,
        ["Auth:AllowAnonymous"] = "false",
        ["Auth:Acl:0"] = "allow all devices/# user alice",
        ["Auth:Acl:1"] = "deny subscribe devices/secret/# user bob",
        ["Auth:Acl:2"] = "allow subscribe devices/# user bob",
        ["Auth:Acl:3"] = "deny publish # user bob",
        ["Auth:Acl:4"] = "allow all # user alice",
        // carol: a/public/# and a/other/# readable, a/private/# not; a subscription to a/# overlaps the denied subtree, so it is filtered
        ["Auth:Acl:5"] = "allow subscribe a/public/# user carol",
        ["Auth:Acl:6"] = "deny subscribe a/private/# user carol",
        ["Auth:Acl:7"] = "allow subscribe a/# user carol",
        // dave: only a/public/#; no rule covers a/#, so the default refuses it
        ["Auth:Acl:8"] = "allow subscribe a/public/# user dave",
        ["Auth:AclDefault"] = "Deny",
        ["Bridges:TokenKey"] = tokenKey,
    });

    [Fact]
    public async Task Sse_ws_and_fleet_need_a_valid_token()
    {
        await using var bridges = await StartAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, (await bridges.OpenSseAsync("topic=devices/%23")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bridges.OpenSseAsync("topic=devices/%23&token=forged.token")).StatusCode);
        var refused = await Assert.ThrowsAsync<WebSocketRefusedException>(() => bridges.ConnectWebSocketAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        using (var fleet = await bridges.CreateHttpClient().GetAsync("api/fleet")) Assert.Equal(HttpStatusCode.Unauthorized, fleet.StatusCode);

        var token = await bridges.GetTokenAsync("alice", "wonderland");
        Assert.Equal(HttpStatusCode.OK, (await bridges.OpenSseAsync("topic=devices/%23&token=" + Uri.EscapeDataString(token))).StatusCode);
        var ws = await bridges.ConnectWebSocketAsync(token);
        await ws.SendAsync(new { op = "ping" });
        Assert.Equal("pong", (await ws.ReceiveAsync()).GetProperty("ev").GetString());
        var http = bridges.CreateHttpClient();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using (var fleet = await http.GetAsync("api/fleet")) Assert.Equal(HttpStatusCode.OK, fleet.StatusCode);
    }

    [Fact]
    public async Task Wrong_password_gets_no_token()
    {
        await using var bridges = await StartAsync();
        var e = await Assert.ThrowsAsync<HttpRequestException>(() => bridges.GetTokenAsync("alice", "nope"));
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        using var bad = await bridges.CreateHttpClient().PostAsync("api/token", new StringContent("{oops", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Acl_denied_filter_is_403_and_a_partly_denied_filter_only_delivers_allowed_topics()
    {
        await using var bridges = await StartAsync();
        var bob = Uri.EscapeDataString(await bridges.GetTokenAsync("bob", "builder"));
        var denied = await bridges.OpenSseAsync("topic=devices/secret/%23&token=" + bob);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Contains("devices/secret/#", await denied.ReadBodyAsync());

        // "devices/#" overlaps the denied subtree: allowed, filtered message by message
        var sse = await bridges.OpenSseAsync("topic=devices/%23&token=" + bob);
        Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
        var mqtt = await bridges.ConnectMqttAsync(username: "alice", password: "wonderland");
        await TestBridges.PublishAsync(mqtt, "devices/secret/key", "hidden");
        await TestBridges.PublishAsync(mqtt, "devices/d1/telemetry", "visible");
        var e = await sse.NextAsync();
        Assert.Equal("devices/d1/telemetry", e.Json.GetProperty("topic").GetString());

        // and the replay obeys the same rule
        var replay = await bridges.OpenSseAsync("topic=devices/%23&from=earliest&token=" + bob);
        Assert.Equal("devices/d1/telemetry", (await replay.NextAsync()).Json.GetProperty("topic").GetString());
    }

    [Fact]
    public async Task Ws_publish_refused_by_acl_and_sub_denied_get_errors()
    {
        await using var bridges = await StartAsync();
        var ws = await bridges.ConnectWebSocketAsync(await bridges.GetTokenAsync("bob", "builder"));
        await ws.SendAsync(new { op = "pub", topic = "devices/d1/cmd", data = "x", qos = 1, req = "p1" });
        var ack = await ws.ReceiveEventAsync("puback");
        Assert.False(ack.GetProperty("ok").GetBoolean());
        Assert.Equal("not authorized", ack.GetProperty("reason").GetString());
        await ws.SendAsync(new { op = "sub", ch = "devices/secret/#" });
        var error = await ws.ReceiveEventAsync("error");
        Assert.Equal("devices/secret/#", error.GetProperty("ch").GetString());

        var alice = await bridges.ConnectWebSocketAsync(await bridges.GetTokenAsync("alice", "wonderland"));
        await alice.SendAsync(new { op = "pub", topic = "devices/d1/cmd", data = "x", qos = 1, req = "p2" });
        Assert.True((await alice.ReceiveEventAsync("puback")).GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task Ws_subscription_overlapping_a_denied_subtree_delivers_only_the_permitted_messages()
    {
        await using var bridges = await StartAsync();
        var ws = await bridges.ConnectWebSocketAsync(await bridges.GetTokenAsync("carol", "singer"));
        await ws.SendAsync(new { op = "sub", ch = "a/#" });
        await ws.ReceiveEventAsync("subscribed", "a/#");
        var mqtt = await bridges.ConnectMqttAsync(username: "alice", password: "wonderland");

        // one publisher at QoS 1: the feed keeps its order, so once the marker arrives every earlier message was decided
        string[] topics = ["a/private/1", "a/public/1", "a/private/deep/2", "a/other/1", "a/private/3", "a/public/marker"];
        foreach (var topic in topics) await TestBridges.PublishAsync(mqtt, topic, topic);
        var frames = await ws.ReceiveUntilAsync(f => f.TryGetProperty("topic", out var t) && t.GetString() == "a/public/marker");

        var delivered = frames.Where(f => f.GetProperty("ev").GetString() == "msg").Select(f => f.GetProperty("topic").GetString()).ToList();
        Assert.Equal(["a/public/1", "a/other/1", "a/public/marker"], delivered);
        Assert.All(frames.Where(f => f.GetProperty("ev").GetString() == "msg"), f => Assert.Equal("a/#", f.GetProperty("ch").GetString()));
    }

    [Fact]
    public async Task Ws_subscription_wider_than_the_only_allowed_subtree_is_refused()
    {
        await using var bridges = await StartAsync();
        var ws = await bridges.ConnectWebSocketAsync(await bridges.GetTokenAsync("dave", "diver"));
        await ws.SendAsync(new { op = "sub", ch = "a/#" });
        var error = await ws.ReceiveEventAsync("error");
        Assert.Equal("a/#", error.GetProperty("ch").GetString());
        Assert.Equal("not authorized", error.GetProperty("reason").GetString());

        await ws.SendAsync(new { op = "sub", ch = "a/public/#" });
        await ws.ReceiveEventAsync("subscribed", "a/public/#");
        var mqtt = await bridges.ConnectMqttAsync(username: "alice", password: "wonderland");
        await TestBridges.PublishAsync(mqtt, "a/private/1", "hidden");
        await TestBridges.PublishAsync(mqtt, "a/public/1", "visible");
        var message = await ws.ReceiveEventAsync("msg");
        Assert.Equal("a/public/1", message.GetProperty("topic").GetString());
    }

    [Fact]
    public async Task Mqtt_over_websocket_subscribe_is_denied_or_filtered_by_the_acl()
    {
        await using var bridges = await StartAsync();
        using var bob = new MqttClientFactory().CreateMqttClient();
        await bob.ConnectAsync(new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri($"ws://127.0.0.1:{bridges.HttpPort}/mqtt"))
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithCredentials("bob", "builder")
            .WithTimeout(Timeouts.Default)
            .Build()).WaitAsync(Timeouts.Default);
        var received = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var marker = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bob.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage.Topic);
            if (e.ApplicationMessage.Topic == "devices/marker") marker.TrySetResult();
            return Task.CompletedTask;
        };

        var denied = await bob.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("devices/secret/#", MqttQualityOfServiceLevel.AtLeastOnce).Build()).WaitAsync(Timeouts.Default);
        var filtered = await bob.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("devices/#", MqttQualityOfServiceLevel.AtLeastOnce).Build()).WaitAsync(Timeouts.Default);

        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, denied.Items.Single().ResultCode);
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, filtered.Items.Single().ResultCode);
        var alice = await bridges.ConnectMqttAsync(username: "alice", password: "wonderland");
        await TestBridges.PublishAsync(alice, "devices/secret/key", "hidden");
        await TestBridges.PublishAsync(alice, "devices/d1/telemetry", "visible");
        await TestBridges.PublishAsync(alice, "devices/marker", "marker");
        await marker.Task.WaitAsync(Timeouts.Default);
        Assert.Equal(["devices/d1/telemetry", "devices/marker"], received.ToArray());
    }

    [Fact]
    public async Task Expired_token_is_refused_on_sse_and_ws()
    {
        var key = Convert.ToBase64String(TokenKey);
        await using var bridges = await StartAsync(key);
        var fresh = await bridges.GetTokenAsync("alice", "wonderland");
        // signed with the server's key, issued with a lifetime that ended a minute ago
        var expired = new TokenService(TokenKey, TimeSpan.FromMinutes(15), new ShiftedTime(TimeSpan.FromMinutes(-16))).Issue("alice").Token;
        var unexpired = new TokenService(TokenKey, TimeSpan.FromMinutes(15), new ShiftedTime(TimeSpan.FromMinutes(-14))).Issue("alice").Token;

        Assert.Equal(HttpStatusCode.OK, (await bridges.OpenSseAsync("topic=devices/%23&token=" + Uri.EscapeDataString(fresh))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await bridges.OpenSseAsync("topic=devices/%23&token=" + Uri.EscapeDataString(unexpired))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await bridges.OpenSseAsync("topic=devices/%23&token=" + Uri.EscapeDataString(expired))).StatusCode);
        var refused = await Assert.ThrowsAsync<WebSocketRefusedException>(() => bridges.ConnectWebSocketAsync(expired));
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        var ws = await bridges.ConnectWebSocketAsync(unexpired);
        await ws.SendAsync(new { op = "ping" });
        Assert.Equal("pong", (await ws.ReceiveAsync()).GetProperty("ev").GetString());
    }

    /// <summary>The system clock moved by a fixed offset: issues tokens as if at another time.</summary>
    sealed class ShiftedTime(TimeSpan offset) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
    }

    [Fact]
    public async Task Token_from_another_key_is_refused()
    {
        await using var bridges = await StartAsync();
        await using var other = await StartAsync();
        var foreign = await other.GetTokenAsync("alice", "wonderland");
        Assert.Equal(HttpStatusCode.Unauthorized, (await bridges.OpenSseAsync("topic=devices/%23&token=" + Uri.EscapeDataString(foreign))).StatusCode);
    }

    [Fact]
    public async Task Without_auth_no_token_is_needed_and_a_token_is_still_issued()
    {
        await using var bridges = await TestBridges.StartAsync();
        Assert.Equal(HttpStatusCode.OK, (await bridges.OpenSseAsync("topic=x")).StatusCode);
        using var response = await bridges.CreateHttpClient().PostAsJsonAsync("api/token", new { username = "anyone", password = "x" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
