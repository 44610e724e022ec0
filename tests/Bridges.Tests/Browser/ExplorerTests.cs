using IotRealtime.Bridges.Tests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

[Collection(BrowserCollection.Name)]
public sealed class ExplorerTests(BrowserFixture browser, ITestOutputHelper output) : BrowserTest(browser, output)
{
    // History from before the page opened: the bridges record without a browser listening.
    static IReadOnlyDictionary<string, string?> RecordAlways => new Dictionary<string, string?> { ["Bridges:History:Record"] = "Always" };

    [Fact]
    public async Task Subscribing_from_history_shows_earlier_messages_and_keeps_only_the_newest_rows()
    {
        var host = Own(await TestBridges.StartAsync(RecordAlways));
        var device = await host.ConnectMqttAsync("crane-5");
        for (var i = 1; i <= 30; i++) await TestBridges.PublishAsync(device, "site/crane-5/load", i.ToString());
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(host.BaseUri, "explorer.html?rows=50").ToString());

        await page.GetByLabel("Topic filter").FillAsync("site/+/load");
        await page.GetByLabel("Start").SelectOptionAsync(new SelectOptionValue { Label = "everything history holds" });
        await page.GetByRole(AriaRole.Button, new() { Name = "Subscribe" }).ClickAsync();
        await DashboardPage.WaitForRowsAsync(page, 30);
        Assert.Equal(Enumerable.Range(1, 30).Select(i => i.ToString()), await DashboardPage.ExplorerPayloadsAsync(page));
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex(@"filter=site%2F%2B%2Fload&from=earliest"));

        for (var i = 31; i <= 90; i++) await TestBridges.PublishAsync(device, "site/crane-5/load", i.ToString());
        await page.WaitForFunctionAsync("() => window.iotDashboard.received() === 90 && window.iotDashboard.rows()[0]?.payload === '90'");

        await Assertions.Expect(page.Locator("#messages li")).ToHaveCountAsync(50);
        Assert.Equal(Enumerable.Range(41, 50).Select(i => i.ToString()), await DashboardPage.ExplorerPayloadsAsync(page));
        await Assertions.Expect(page.Locator("#stats")).ToContainTextAsync("90 messages on site/+/load");
    }
}
