using System.Net;
using System.Net.Http.Json;
using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.Auth;

/// <summary>With a password file the bridges need a token, and the broker's ACL for the token's user decides.</summary>
public sealed class TokenAndAclTests : IDisposable
{
    readonly TestUsers _users = TestUsers.Create(("alice", "wonderland"), ("bob", "builder"));

    public void Dispose() => _users.Dispose();

    Task<TestBridges> StartAsync() => TestBridges.StartAsync(new Dictionary<string, string?>
    {
        ["Auth:PasswordFile"] = _users.PasswordFile,
        ["Auth:AllowAnonymous"] = "false",
        ["Auth:Acl:0"] = "allow all devices/# user alice",
        ["Auth:Acl:1"] = "deny subscribe devices/secret/# user bob",
        ["Auth:Acl:2"] = "allow subscribe devices/# user bob",
        ["Auth:Acl:3"] = "deny publish # user bob",
        ["Auth:Acl:4"] = "allow all # user alice",
        ["Auth:AclDefault"] = "Deny",
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
