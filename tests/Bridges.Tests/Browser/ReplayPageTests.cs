using IotRealtime.Bridges.Tests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

[Collection(BrowserCollection.Name)]
public sealed class ReplayPageTests(BrowserFixture browser, ITestOutputHelper output)
{
    [Fact]
    public async Task Replay_without_kafka_says_kafka_is_not_configured()
    {
        await using var host = await TestBridges.StartAsync();
        var page = await browser.NewPageAsync(output);
        await page.GotoAsync(new Uri(host.BaseUri, "replay.html").ToString());

        await page.GetByRole(AriaRole.Button, new() { Name = "Start replay" }).ClickAsync();

        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("Kafka not configured");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Start replay" })).ToBeEnabledAsync();
    }
}
