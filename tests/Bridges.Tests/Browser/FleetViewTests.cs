using IotRealtime.Bridges.Tests.Infrastructure;
using Microsoft.Playwright;
using MQTTnet;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>The fleet view (/) lists the devices connected to the broker, live through the $presence channel.</summary>
[Collection(BrowserCollection.Name)]
public sealed class FleetViewTests(BrowserFixture browser, ITestOutputHelper output) : BrowserTest(browser, output)
{
    [Fact]
    public async Task A_device_appears_when_it_connects_and_disappears_when_it_disconnects()
    {
        var host = Own(await TestBridges.StartAsync());
        var page = await NewPageAsync();
        await page.GotoAsync(host.BaseUri.ToString());
        await Assertions.Expect(page.Locator("#online-count")).ToHaveTextAsync("0");
        await DashboardPage.WaitForSubscriptionAsync(page);
        Assert.Equal("ws", await DashboardPage.TransportAsync(page));

        var device = await host.ConnectMqttAsync("boiler-7");
        var row = page.Locator("tr[data-client-id='boiler-7']");
        await Assertions.Expect(row).ToBeVisibleAsync();
        await Assertions.Expect(row.GetByRole(AriaRole.Link, new() { Name = "boiler-7" })).ToHaveAttributeAsync("href", "/device.html?id=boiler-7");
        await Assertions.Expect(page.Locator("#online-count")).ToHaveTextAsync("1");

        await device.DisconnectAsync(new MqttClientDisconnectOptions());
        await Assertions.Expect(row).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#online-count")).ToHaveTextAsync("0");
        // Both changes came over $presence, not only from the 2 s poll.
        Assert.True(await page.EvaluateAsync<int>("() => window.iotDashboard.presenceEvents") >= 2, "no presence event reached the page");
    }

    [Fact]
    public async Task The_device_list_is_searchable_and_shows_the_message_rate()
    {
        var host = Own(await TestBridges.StartAsync());
        foreach (var id in new[] { "pump-1", "pump-2", "valve-1" }) await host.ConnectMqttAsync(id);
        var publisher = await host.ConnectMqttAsync("meter-1");
        var page = await NewPageAsync();
        await page.GotoAsync(host.BaseUri.ToString());
        await Assertions.Expect(page.Locator("#devices tr")).ToHaveCountAsync(4);

        await page.GetByLabel("Search by client id or user").FillAsync("pump");
        await Assertions.Expect(page.Locator("#devices tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#shown")).ToHaveTextAsync("2 of 4 match");
        await page.GetByLabel("Search by client id or user").FillAsync("");
        await Assertions.Expect(page.Locator("#devices tr")).ToHaveCountAsync(4);

        for (var i = 0; i < 20; i++) await TestBridges.PublishAsync(publisher, "devices/meter-1/telemetry", $"{{\"kwh\":{i}}}");
        await Assertions.Expect(page.Locator("#received")).ToHaveTextAsync("20");
        await BrowserFixture.ScreenshotAsync(page, "fleet");
    }
}
