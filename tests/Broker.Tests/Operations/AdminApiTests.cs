using System.Net;
using System.Text.Json;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Operations;

public sealed class AdminApiTests
{
    [Fact]
    public async Task Clients_are_listed_and_inspected()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await MqttTestClient.ConnectAsync(broker, clientId: "admin-list-1", configure: o => o.WithCredentials("alice", "pw"));
        await client.SubscribeAsync("a/#");
        await client.SubscribeAsync("b/+");
        using var http = OperationsHttp.Create(broker);

        var listed = await http.FindClientAsync("admin-list-1");
        var one = await http.GetJsonAsync("api/clients/admin-list-1");
        using var missing = await http.GetAsync("api/clients/nobody");

        Assert.NotNull(listed);
        Assert.Equal("alice", one.GetProperty("username").GetString());
        Assert.Equal("tcp", one.GetProperty("transport").GetString());
        Assert.Equal("5.0", one.GetProperty("protocolVersion").GetString());
        Assert.Equal(2, one.GetProperty("subscriptions").GetInt32());
        Assert.Equal(0, one.GetProperty("queueDepth").GetInt32());
        Assert.Equal(0, one.GetProperty("inflight").GetInt32());
        Assert.StartsWith("127.0.0.1:", one.GetProperty("remoteEndPoint").GetString());
        Assert.True(one.GetProperty("connectedAt").GetDateTimeOffset() <= DateTimeOffset.UtcNow);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Deleting_a_client_disconnects_it_with_administrative_action_and_keeps_its_session()
    {
        await using var broker = await TestBroker.StartAsync();
        var (client, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "admin-kick", configure: c => { c.CleanSession = false; c.SessionExpiryInterval = 600; });
        await using var _c = client;
        using var http = OperationsHttp.Create(broker);

        using var response = await http.DeleteAsync("api/clients/admin-kick");
        var disconnect = await client.ExpectClosedAsync(Timeouts.Default);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(MqttDisconnectReasonCode.AdministrativeAction, disconnect?.ReasonCode);
        await Wait.UntilAsync(() => broker.Host.Broker.GetClient("admin-kick") is null, Timeouts.Default, "the client to be gone");
        var session = await http.GetJsonAsync("api/sessions/admin-kick");
        Assert.False(session.GetProperty("online").GetBoolean());
        using var again = await http.DeleteAsync("api/clients/admin-kick");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task Sessions_list_offline_persistent_sessions_and_delete_ends_them()
    {
        await using var broker = await TestBroker.StartAsync();
        var (offline, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "admin-offline", configure: c => { c.CleanSession = false; c.SessionExpiryInterval = 3600; });
        await offline.SendAsync(Packets.Subscribe(1, "offline/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await offline.ReceiveAsync<MqttSubAckPacket>();
        await offline.SendAsync(new MqttDisconnectPacket());
        await offline.ExpectClosedAsync();
        await offline.DisposeAsync();
        var (online, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "admin-online", configure: c => { c.CleanSession = false; c.SessionExpiryInterval = 3600; });
        await using var _o = online;
        using var http = OperationsHttp.Create(broker);
        await Wait.UntilAsync(() => broker.Host.Broker.GetSession("admin-offline") is { Online: false }, Timeouts.Default, "the session to go offline");

        var sessions = (await http.GetJsonAsync("api/sessions")).EnumerateArray().ToDictionary(s => s.GetProperty("clientId").GetString()!);

        Assert.False(sessions["admin-offline"].GetProperty("online").GetBoolean());
        Assert.Equal(3600u, sessions["admin-offline"].GetProperty("expiryInterval").GetUInt32());
        Assert.True(sessions["admin-offline"].GetProperty("expiresAt").GetDateTimeOffset() > DateTimeOffset.UtcNow);
        Assert.Equal("offline/#", sessions["admin-offline"].GetProperty("subscriptionFilters")[0].GetString());
        Assert.True(sessions["admin-online"].GetProperty("online").GetBoolean());

        using var deleteOffline = await http.DeleteAsync("api/sessions/admin-offline");
        using var deleteOnline = await http.DeleteAsync("api/sessions/admin-online");
        var disconnect = await online.ExpectClosedAsync(Timeouts.Default);

        Assert.Equal(HttpStatusCode.NoContent, deleteOffline.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, deleteOnline.StatusCode);
        Assert.Equal(MqttDisconnectReasonCode.AdministrativeAction, disconnect?.ReasonCode);
        Assert.Null(broker.Host.Broker.GetSession("admin-offline"));
        Assert.Null(broker.Host.Broker.GetSession("admin-online"));
        Assert.Equal(0, broker.Host.Broker.SubscriptionCount);
        // the session really ended: a reconnect without clean start finds none
        var (back, connAck) = await RawMqttClient.ConnectAsync(broker.MqttPort, "admin-offline", configure: c => { c.CleanSession = false; c.SessionExpiryInterval = 60; });
        await using var _b = back;
        Assert.False(connAck.IsSessionPresent);
    }

    [Fact]
    public async Task Retained_messages_are_listed_and_cleared_by_topic_and_filter()
    {
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string?> { ["Broker:SysInterval"] = "0" });
        await using var client = await MqttTestClient.ConnectAsync(broker);
        await client.PublishAsync("retained/a", "hello", retain: true);
        await client.PublishAsync("retained/b", "world", retain: true);
        await client.PublishAsync("other/c", "!", retain: true);
        await client.Client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("retained/bin").WithPayload(new byte[] { 0xff, 0x00, 0xfe }).WithRetainFlag().Build());
        using var http = OperationsHttp.Create(broker);
        await Wait.UntilAsync(() => broker.Host.Broker.Retained.Count == 4, Timeouts.Default, "four retained messages");

        var listed = (await http.GetJsonAsync("api/retained?filter=retained/%23")).EnumerateArray().ToDictionary(m => m.GetProperty("topic").GetString()!);

        Assert.Equal(["retained/a", "retained/b", "retained/bin"], listed.Keys.Order());
        Assert.Equal("hello", listed["retained/a"].GetProperty("payload").GetString());
        Assert.Equal("utf8", listed["retained/a"].GetProperty("payloadEncoding").GetString());
        Assert.Equal(5, listed["retained/a"].GetProperty("size").GetInt32());
        Assert.Equal(1, listed["retained/a"].GetProperty("qos").GetInt32());
        Assert.Equal("base64", listed["retained/bin"].GetProperty("payloadEncoding").GetString());
        Assert.Equal(Convert.ToBase64String([0xff, 0x00, 0xfe]), listed["retained/bin"].GetProperty("payload").GetString());

        using var one = await http.DeleteAsync("api/retained?topic=retained/a");
        Assert.Equal(1, JsonDocument.Parse(await one.Content.ReadAsStringAsync()).RootElement.GetProperty("removed").GetInt32());
        Assert.Equal(3, broker.Host.Broker.Retained.Count);

        using var all = await http.DeleteAsync("api/retained?filter=%23");
        Assert.Equal(3, JsonDocument.Parse(await all.Content.ReadAsStringAsync()).RootElement.GetProperty("removed").GetInt32());
        Assert.Equal(0, broker.Host.Broker.Retained.Count);

        using var bad = await http.GetAsync("api/retained?filter=a/%23/b");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Admin_token_is_required_when_configured()
    {
        const string token = "s3cret-admin-token-0123";
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string?> { ["Admin:Token"] = token });
        using var anonymous = OperationsHttp.Create(broker);
        using var wrong = OperationsHttp.Create(broker, "s3cret-admin-token-0124");
        using var right = OperationsHttp.Create(broker, token);

        using var none = await anonymous.GetAsync("api/clients");
        using var bad = await wrong.PostAsync("api/drain", null);
        using var good = await right.GetAsync("api/clients");
        using var metrics = await anonymous.GetAsync("metrics");

        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal("Bearer", none.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        Assert.False(broker.Host.Broker.IsDraining);
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode); // /metrics and probes stay open for scrapers
    }

    [Fact]
    public async Task Without_a_token_the_admin_api_answers_loopback_callers()
    {
        await using var broker = await TestBroker.StartAsync();
        using var http = OperationsHttp.Create(broker);

        using var response = await http.GetAsync("api/sessions");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Without_a_token_the_admin_api_refuses_a_caller_from_a_non_loopback_address()
    {
        // Bound to this machine's own interface address, a request to it arrives from that address: a real non-loopback peer.
        var address = NonLoopbackAddress();
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string?> { ["Listeners:BindAddress"] = address.ToString() });
        using var http = new HttpClient { BaseAddress = new Uri($"http://{new IPEndPoint(address, broker.HttpPort)}/"), Timeout = Timeouts.Default };

        using var sessions = await http.GetAsync("api/sessions");
        using var drain = await http.PostAsync("api/drain", null);
        using var metrics = await http.GetAsync("metrics");

        Assert.Equal(HttpStatusCode.Forbidden, sessions.StatusCode);
        Assert.Contains("loopback", await sessions.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Forbidden, drain.StatusCode);
        Assert.False(broker.Host.Broker.IsDraining);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);

        const string token = "s3cret-admin-token-0123";
        await using var withToken = await TestBroker.StartAsync(new Dictionary<string, string?> { ["Listeners:BindAddress"] = address.ToString(), ["Admin:Token"] = token });
        using var authorized = new HttpClient { BaseAddress = new Uri($"http://{new IPEndPoint(address, withToken.HttpPort)}/"), Timeout = Timeouts.Default };
        authorized.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var allowed = await authorized.GetAsync("api/sessions");
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    /// <summary>An address of an interface that is up and not loopback or link-local; fails the test when the machine has none.</summary>
    static IPAddress NonLoopbackAddress()
    {
        var addresses = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up
                && i.NetworkInterfaceType != System.Net.NetworkInformation.NetworkInterfaceType.Loopback)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .Where(a => !IPAddress.IsLoopback(a) && !a.IsIPv6LinkLocal)
            .OrderBy(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 0 : 1)
            .ToList();
        Assert.True(addresses.Count > 0, "this test needs a network interface with a non-loopback address (it sends to itself through it)");
        return addresses[0];
    }

    [Fact]
    public async Task Short_admin_token_is_a_configuration_error()
    {
        var error = await Assert.ThrowsAsync<IotRealtime.Broker.Host.Configuration.BrokerConfigurationException>(
            () => TestBroker.StartAsync(new Dictionary<string, string?> { ["Admin:Token"] = "short" }));

        Assert.Contains("Admin:Token", error.Message);
    }
}
