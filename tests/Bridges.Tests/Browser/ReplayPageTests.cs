using IotRealtime.Bridges.Tests.Infrastructure;
using IotRealtime.Broker.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

[Collection(BrowserCollection.Name)]
public sealed class ReplayPageTests(BrowserFixture browser, ITestOutputHelper output) : BrowserTest(browser, output)
{
    [Fact]
    public async Task Replay_without_kafka_says_kafka_is_not_configured()
    {
        // the page learns that Kafka is off from the replay API's 404, which the browser reports
        ExpectConsoleError(@"status of 404 \(Not Found\) at http://[^ ]*/api/replay\?");
        var host = Own(await TestBridges.StartAsync());
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(host.BaseUri, "replay.html").ToString());

        await page.GetByRole(AriaRole.Button, new() { Name = "Start replay" }).ClickAsync();

        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("Kafka not configured");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Start replay" })).ToBeEnabledAsync();
    }

    [Fact]
    public async Task Replay_from_the_oldest_record_shows_every_published_payload_once_in_order()
    {
        const int count = 25;
        var kafka = Own(KafkaMockCluster.Start());
        kafka.CreateTopic("replay");
        var host = Own(await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = kafka.BootstrapServers,
            ["Kafka:LingerMs"] = "0",
            ["Kafka:ShutdownFlushMs"] = "2000",
            ["Kafka:Rules:0:Filter"] = "devices/replay/#",
            ["Kafka:Rules:0:Topic"] = "replay",
            ["Kafka:DefaultTopic"] = "",
        }));
        var forwarder = host.Host.Services.GetRequiredService<KafkaForwarder>();
        var mqtt = await host.ConnectMqttAsync("replay-publisher");
        var published = Enumerable.Range(0, count).Select(i => $"{{\"seq\":{i},\"t\":{20 + i % 7}.5}}").ToList();
        foreach (var payload in published) await TestBridges.PublishAsync(mqtt, "devices/replay/sensor-1", payload);
        await Wait.UntilAsync(() => forwarder.Forwarded >= count, Timeouts.Default, $"{count} records forwarded to Kafka");
        Assert.Equal(0, forwarder.Failed);

        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(host.BaseUri, "replay.html").ToString());
        await page.GetByLabel("Topic filter").FillAsync("devices/replay/#");
        await page.GetByLabel("Start at").SelectOptionAsync("earliest");
        await page.GetByLabel("Speed").SelectOptionAsync("0");
        await page.GetByRole(AriaRole.Button, new() { Name = "Start replay" }).ClickAsync();

        await Assertions.Expect(page.Locator("#progress")).ToContainTextAsync($"Done: {count} messages replayed.");
        await Assertions.Expect(page.Locator("#messages li")).ToHaveCountAsync(count);
        Assert.Equal(count, await page.EvaluateAsync<int>("() => window.iotDashboard.shown()"));
        await Assertions.Expect(page.Locator("#notice")).ToBeHiddenAsync();
        // the list shows the newest first
        var shown = await page.Locator("#messages li .payload").AllTextContentsAsync();
        Assert.Equal(published, shown.Reverse());
        Assert.All(await page.Locator("#messages li .topic").AllTextContentsAsync(), t => Assert.Equal("devices/replay/sensor-1", t));
        await BrowserFixture.ScreenshotAsync(page, "replay");
    }
}
