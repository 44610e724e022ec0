using System.Collections.Concurrent;
using IotRealtime.Bridges.Tests.Infrastructure;
using IotRealtime.Broker.Host.Auth;
using Microsoft.Playwright;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>
/// mqtt.js (from npm, served from the build output's wwwroot/lib) in the topic explorer's publish panel talks MQTT
/// over the broker's /mqtt WebSocket listener (same origin as the page); an MQTTnet client on the TCP listener sees
/// what it publishes.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class MqttJsTests(BrowserFixture browser, ITestOutputHelper output) : BrowserTest(browser, output), IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrealtime-mqttjs-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Mqtt_js_publishes_over_websocket_and_a_tcp_client_receives_it()
    {
        var broker = Own(await StartBroker());
        var subscriber = Own(await TcpSubscriber.ConnectAsync(broker, "plant/line1/#"));
        var page = await OpenExplorer(broker);

        await ConnectMqttJs(page);
        await Publish(page, "plant/line1/valve", "{\"open\":true}");

        await Wait.UntilAsync(() => subscriber.Received.ContainsKey("plant/line1/valve"), Timeouts.Default, "the TCP subscriber to receive the browser's publish");
        Assert.Equal("{\"open\":true}", subscriber.Received["plant/line1/valve"]);
        await Assertions.Expect(page.Locator("#publish-result")).ToContainTextAsync("acknowledged by the broker");
        await BrowserFixture.ScreenshotAsync(page, "explorer-mqtt-publish");
    }

    [Fact]
    public async Task Mqtt_js_uses_device_credentials_and_acl()
    {
        var passwords = Path.Combine(_dir, "passwords");
        PasswordFile.SetPassword(passwords, "alice", PasswordHash.Create("wonderland"u8, iterations: 1000));
        PasswordFile.SetPassword(passwords, "observer", PasswordHash.Create("watch"u8, iterations: 1000));
        var broker = Own(await StartBroker(
            ("Auth:PasswordFile", passwords),
            ("Auth:Acl:0", "allow publish devices/%u/# user alice"),
            ("Auth:Acl:1", "allow subscribe # user observer"),
            ("Auth:AclDefault", "deny")));
        var subscriber = Own(await TcpSubscriber.ConnectAsync(broker, "devices/#", "observer", "watch"));
        var page = await OpenExplorer(broker);

        await ConnectMqttJs(page, "alice", "looking-glass", expectConnected: false);
        await Assertions.Expect(page.Locator("#publish-result")).ToContainTextAsync("MQTT connection failed");

        await ConnectMqttJs(page, "alice", "wonderland");
        // Denied first: the broker keeps one connection's order, so once the allowed message arrives the denied
        // one would have arrived before it had it been routed.
        await Publish(page, "devices/bob/telemetry", "{\"t\":1}");
        await Assertions.Expect(page.Locator("#publish-result")).ToContainTextAsync("Not published");
        await Publish(page, "devices/alice/telemetry", "{\"t\":2}");
        await Wait.UntilAsync(() => subscriber.Received.ContainsKey("devices/alice/telemetry"), Timeouts.Default, "alice's allowed publish");

        Assert.False(subscriber.Received.ContainsKey("devices/bob/telemetry"), "the ACL let alice publish under devices/bob");
        await Assertions.Expect(page.Locator("#publish-result")).ToContainTextAsync("acknowledged by the broker");
    }

    static Task<TestBridges> StartBroker(params (string Key, string Value)[] settings) =>
        TestBridges.StartAsync(settings.ToDictionary(s => s.Key, s => (string?)s.Value));

    async Task<IPage> OpenExplorer(TestBridges broker)
    {
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(broker.BaseUri, "explorer.html").ToString());
        // The default broker URL is the page's own host: the broker's HTTP listener serves /mqtt next to the dashboard.
        await Assertions.Expect(page.GetByLabel("Broker URL")).ToHaveValueAsync($"ws://127.0.0.1:{broker.HttpPort}/mqtt");
        return page;
    }

    static async Task ConnectMqttJs(IPage page, string? username = null, string? password = null, bool expectConnected = true)
    {
        await page.GetByLabel("User name").FillAsync(username ?? "");
        await page.GetByLabel("Password").FillAsync(password ?? "");
        await page.GetByRole(AriaRole.Button, new() { Name = "Connect", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#mqtt-state")).ToContainTextAsync(expectConnected ? "connected as" : "refused");
    }

    static async Task Publish(IPage page, string topic, string payload)
    {
        await page.Locator("#publish-result").EvaluateAsync("e => e.textContent = ''");
        await page.GetByLabel("Topic", new() { Exact = true }).FillAsync(topic);
        await page.GetByLabel("Payload").FillAsync(payload);
        await page.GetByRole(AriaRole.Button, new() { Name = "Publish", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#publish-result")).Not.ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^$|publishing"));
    }

    /// <summary>An MQTTnet client on the broker's TCP listener that keeps the last payload per topic.</summary>
    sealed class TcpSubscriber : IAsyncDisposable
    {
        readonly IMqttClient _client;

        TcpSubscriber(IMqttClient client) => _client = client;

        public ConcurrentDictionary<string, string> Received { get; } = new();

        public static async Task<TcpSubscriber> ConnectAsync(TestBridges broker, string filter, string? username = null, string? password = null)
        {
            var client = new MqttClientFactory().CreateMqttClient();
            var subscriber = new TcpSubscriber(client);
            client.ApplicationMessageReceivedAsync += e =>
            {
                subscriber.Received[e.ApplicationMessage.Topic] = e.ApplicationMessage.ConvertPayloadToString();
                return Task.CompletedTask;
            };
            var options = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", broker.MqttPort)
                .WithProtocolVersion(MqttProtocolVersion.V500).WithClientId("tcp-" + Guid.NewGuid().ToString("N")[..8]).WithTimeout(Timeouts.Default);
            if (username is not null) options.WithCredentials(username, password);
            using var timeout = new CancellationTokenSource(Timeouts.Default);
            await client.ConnectAsync(options.Build(), timeout.Token);
            var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce).Build(), timeout.Token);
            Assert.True((int)result.Items.Single().ResultCode < 0x80, $"subscribe {filter}: {result.Items.Single().ResultCode}");
            return subscriber;
        }

        public async ValueTask DisposeAsync()
        {
            if (_client.IsConnected) await _client.DisconnectAsync();
            _client.Dispose();
        }
    }
}
