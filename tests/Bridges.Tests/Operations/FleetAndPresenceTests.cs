using System.Text.Json;
using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.Operations;

public sealed class FleetAndPresenceTests
{
    [Fact]
    public async Task Fleet_lists_online_clients_and_counts_messages()
    {
        await using var bridges = await TestBridges.StartAsync();
        var d1 = await bridges.ConnectMqttAsync("d1");
        await bridges.ConnectMqttAsync("d2");
        await TestBridges.PublishAsync(d1, "devices/d1/telemetry", "1");
        var http = bridges.CreateHttpClient();
        var fleet = JsonDocument.Parse(await http.GetStringAsync("api/fleet")).RootElement;
        var online = fleet.GetProperty("online").EnumerateArray().ToList();
        Assert.Equal(["d1", "d2"], online.Select(c => c.GetProperty("clientId").GetString()));
        Assert.Equal("tcp", online[0].GetProperty("transport").GetString());
        Assert.True(online[0].TryGetProperty("connectedAt", out _));
        Assert.Equal(1, fleet.GetProperty("messagesReceived").GetInt64());
        Assert.True(fleet.TryGetProperty("messagesPerSecond", out _));
    }

    [Fact]
    public async Task Presence_streams_connect_and_disconnect_over_sse_and_ws()
    {
        await using var bridges = await TestBridges.StartAsync();
        var sse = await bridges.OpenSseAsync("topic=%24presence");
        await sse.ReadAsync();
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "$presence" });
        await ws.ReceiveEventAsync("subscribed", "$presence");

        var client = await bridges.ConnectMqttAsync("p1");
        var connected = await sse.NextAsync(null, "presence");
        Assert.Equal("p1", connected.Json.GetProperty("clientId").GetString());
        Assert.Equal("connected", connected.Json.GetProperty("kind").GetString());
        var wsConnected = await ws.ReceiveEventAsync("presence", "$presence");
        Assert.Equal("connected", wsConnected.GetProperty("data").GetProperty("kind").GetString());

        await client.DisconnectAsync(new MQTTnet.MqttClientDisconnectOptionsBuilder().Build());
        var disconnected = await sse.NextAsync(null, "presence");
        Assert.Equal("disconnected", disconnected.Json.GetProperty("kind").GetString());
        Assert.Equal("p1", (await ws.ReceiveEventAsync("presence", "$presence")).GetProperty("data").GetProperty("clientId").GetString());
    }
}
