using System.Globalization;
using IotRealtime.Bridges.Tests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>The device view charts every numeric JSON field of a device's telemetry, backfilled from history, then live.</summary>
[Collection(BrowserCollection.Name)]
public sealed class DeviceViewTests(BrowserFixture browser, ITestOutputHelper output) : BrowserTest(browser, output)
{
    [Fact]
    public async Task Charts_start_from_history_and_move_with_published_values()
    {
        var host = Own(await TestBridges.StartAsync(RecordAlways));
        var device = await host.ConnectMqttAsync("greenhouse-3");
        var temperatures = new List<double>();
        var voltages = new List<double>();
        var start = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60);
        async Task Publish(int i)
        {
            var temperature = Math.Round(20 + 3 * Math.Sin(i / 3.0), 2);
            var voltage = Math.Round(3.7 - i * 0.01, 3);
            temperatures.Add(temperature);
            voltages.Add(voltage);
            // The device's own clock: one reading a second (the chart's time axis uses it).
            var ts = start.AddSeconds(i).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            var payload = string.Create(CultureInfo.InvariantCulture, $"{{\"ts\":\"{ts}\",\"temperature\":{temperature},\"battery\":{{\"voltage\":{voltage}}},\"status\":\"ok\"}}");
            await TestBridges.PublishAsync(device, "devices/greenhouse-3/telemetry", payload);
        }

        // Before the page opens: only history can bring these.
        for (var i = 0; i < 5; i++) await Publish(i);
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(host.BaseUri, "device.html?id=greenhouse-3").ToString());
        await WaitForPoints(page, "temperature", 5);
        Assert.Equal("ws", await DashboardPage.TransportAsync(page));

        for (var i = 5; i < 25; i++) await Publish(i);
        await WaitForPoints(page, "temperature", 25);
        await WaitForPoints(page, "battery.voltage", 25);

        // Every value once, in order: the backfill and the live stream meet without gap or duplicate.
        Assert.Equal(temperatures, await Values(page, "temperature"));
        Assert.Equal(voltages, await Values(page, "battery.voltage"));
        Assert.Equal(Enumerable.Range(0, 25).Select(i => (double)(start.ToUnixTimeSeconds() + i)),
            await page.EvaluateAsync<double[]>("() => window.iotDashboard.series('temperature').xs"));
        Assert.Equal(new[] { "battery.voltage", "temperature" }, (await page.EvaluateAsync<string[]>("() => window.iotDashboard.fields()")).Order());
        var chart = page.Locator("figure.chart[data-field='temperature']");
        await Assertions.Expect(chart).ToHaveAttributeAsync("data-last", temperatures[^1].ToString(CultureInfo.InvariantCulture));
        await Assertions.Expect(chart.Locator("canvas")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#count")).ToHaveTextAsync("25");
        await BrowserFixture.ScreenshotAsync(page, "device");
    }

    [Fact]
    public async Task A_chart_keeps_at_most_the_configured_number_of_points()
    {
        var host = Own(await TestBridges.StartAsync());
        var device = await host.ConnectMqttAsync("fan-1");
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(host.BaseUri, "device.html?id=fan-1&points=10").ToString());
        await DashboardPage.WaitForSubscriptionAsync(page);

        for (var i = 1; i <= 30; i++) await TestBridges.PublishAsync(device, "devices/fan-1/telemetry", $"{{\"rpm\":{i}}}");
        await page.WaitForFunctionAsync("() => window.iotDashboard.messages() === 30");
        await page.WaitForFunctionAsync("() => window.iotDashboard.series('rpm')?.ys.at(-1) === 30");

        Assert.Equal(Enumerable.Range(21, 10).Select(i => (double)i), await Values(page, "rpm"));
    }

    [Fact]
    public async Task A_burst_is_drawn_in_batches_and_every_message_counts()
    {
        const int burst = 2000;
        var host = Own(await TestBridges.StartAsync());
        var device = await host.ConnectMqttAsync("press-9");
        var page = await NewPageAsync();
        await page.GotoAsync(new Uri(host.BaseUri, "device.html?id=press-9&points=500").ToString());
        await DashboardPage.WaitForSubscriptionAsync(page);

        // QoS 1 publishes in flight together (MQTTnet pipelines them), bounded by the burst size.
        await Task.WhenAll(Enumerable.Range(1, burst).Select(i => TestBridges.PublishAsync(device, "devices/press-9/telemetry", $"{{\"pressure\":{i}}}")));
        // All received and all drawn.
        await page.WaitForFunctionAsync($"() => window.iotDashboard.messages() === {burst} && window.iotDashboard.pending() === 0", null,
            new PageWaitForFunctionOptions { Timeout = (float)Timeouts.Default.TotalMilliseconds, PollingInterval = 100 });

        var values = await Values(page, "pressure");
        Assert.Equal(500, values.Length);
        Assert.Equal(500, values.Distinct().Count());
        Assert.Equal(burst, values.Max());
        var draws = await page.EvaluateAsync<int>("() => window.iotDashboard.draws()");
        Assert.True(draws < burst / 2, $"{draws} draws for {burst} messages: the page drew per message, not per frame");
    }

    // History from before the page opened: the bridges record without a browser listening.
    static IReadOnlyDictionary<string, string?> RecordAlways => new Dictionary<string, string?> { ["Bridges:History:Record"] = "Always" };

    static Task WaitForPoints(IPage page, string field, int count) =>
        page.WaitForFunctionAsync("([f, n]) => (window.iotDashboard.series(f)?.ys.length ?? 0) >= n", new object[] { field, count },
            new PageWaitForFunctionOptions { Timeout = (float)Timeouts.Default.TotalMilliseconds, PollingInterval = 50 });

    static async Task<double[]> Values(IPage page, string field) =>
        await page.EvaluateAsync<double[]>("f => window.iotDashboard.series(f).ys", field);
}
