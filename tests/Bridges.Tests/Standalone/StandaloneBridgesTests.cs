using System.Net;
using System.Text.Json;
using IotRealtime.Bridges.Host;
using IotRealtime.Bridges.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Bridges.Tests.Standalone;

/// <summary>iotrealtime-bridges as its own host against a broker (with its own bridges off) on port 0.</summary>
public sealed class StandaloneBridgesTests
{
    static async Task<BridgesHost> StartStandaloneAsync(TestBridges broker, params (string Key, string Value)[] extra)
    {
        var values = new Dictionary<string, string?>
        {
            ["Upstream:Host"] = "127.0.0.1",
            ["Upstream:Port"] = broker.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Listeners:BindAddress"] = "127.0.0.1",
            ["Listeners:HttpPort"] = "0",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in extra) values[key] = value;
        return await BridgesHost.StartAsync(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
    }

    [Fact]
    public async Task Standalone_bridges_stream_a_remote_brokers_messages_with_resume_and_publish_back()
    {
        await using var broker = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:Enabled"] = "false" });
        await using var bridges = await StartStandaloneAsync(broker);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{bridges.HttpPort}/"), Timeout = Timeout.InfiniteTimeSpan };

        // the broker itself no longer serves /sse
        using (var notThere = await broker.CreateHttpClient().GetAsync("sse?topic=x")) Assert.Equal(HttpStatusCode.NotFound, notThere.StatusCode);

        await using var sse = await SseReader.OpenAsync(http, "sse?topic=devices/%23");
        Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
        await sse.ReadAsync();
        var device = await broker.ConnectMqttAsync("dev-1");
        await TestBridges.PublishAsync(device, "devices/dev-1/telemetry", "one");
        var first = await sse.NextAsync();
        Assert.Equal("one", first.Json.GetProperty("payload").GetString());
        await TestBridges.PublishAsync(device, "devices/dev-1/telemetry", "two");
        await sse.NextAsync();

        await using var resumed = await SseReader.OpenAsync(http, "sse?topic=devices/%23", lastEventId: first.Id);
        Assert.Equal("two", (await resumed.NextAsync()).Json.GetProperty("payload").GetString());

        // publish from a browser through the standalone bridges reaches the broker's subscribers
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.Topic);
            return Task.CompletedTask;
        };
        await device.SubscribeAsync(new MQTTnet.MqttClientFactory().CreateSubscribeOptionsBuilder().WithTopicFilter("cmd/#").Build());
        await using var ws = await WsTestClient.ConnectAsync(new Uri($"ws://127.0.0.1:{bridges.HttpPort}/ws"));
        await ws.SendAsync(new { op = "pub", topic = "cmd/dev-1", data = "go", qos = 1, req = "r" });
        Assert.True((await ws.ReceiveEventAsync("puback")).GetProperty("ok").GetBoolean());
        Assert.Equal("cmd/dev-1", await received.Task.WithTimeout(Timeouts.Default, "the broker subscriber to get the bridges' publish"));
    }

    [Fact]
    public async Task Standalone_fleet_and_presence_come_from_the_brokers_presence_topics()
    {
        await using var broker = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:Enabled"] = "false" });
        await using var bridges = await StartStandaloneAsync(broker);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{bridges.HttpPort}/"), Timeout = Timeout.InfiniteTimeSpan };
        await using var presence = await SseReader.OpenAsync(http, "sse?topic=%24presence");
        await presence.ReadAsync();
        await broker.ConnectMqttAsync("dev-9");
        var e = await presence.NextAsync(null, "presence");
        Assert.Equal("dev-9", e.Json.GetProperty("clientId").GetString());
        var fleet = JsonDocument.Parse(await http.GetStringAsync("api/fleet")).RootElement;
        Assert.Contains(fleet.GetProperty("online").EnumerateArray(), c => c.GetProperty("clientId").GetString() == "dev-9");
    }

    [Fact]
    public async Task Bad_configuration_names_the_key()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => BridgesHost.StartAsync(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Upstream:Port"] = "70000",
            ["Upstream:Filters:0"] = "a/#/b",
            ["Listeners:HttpPrt"] = "1",
        }).Build()));
        Assert.Contains("Upstream:Port", e.Message, StringComparison.Ordinal);
        Assert.Contains("Upstream:Filters", e.Message, StringComparison.Ordinal);
        Assert.Contains("Listeners:HttpPrt is not a known setting", e.Message, StringComparison.Ordinal);
    }
}
