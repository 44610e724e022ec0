using System.Collections.Concurrent;
using IotRealtime.Bridges.Tests.Infrastructure;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>
/// The page's realtime client through a <see cref="TcpProxy"/> that breaks its connections for real: a reset SSE stream
/// resumes from the last position with nothing lost or repeated, and a refused WebSocket falls back to SSE.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class StreamResumeTests(BrowserFixture browser, ITestOutputHelper output) : BrowserTest(browser, output)
{
    [Fact]
    public async Task A_reset_sse_stream_resumes_with_no_gap_and_no_duplicate()
    {
        // The proxy cuts the stream: the browser reports it as a failed request.
        ExpectConsoleError(@"net::ERR_\w+ at http://[^ ]*/sse\?");
        // A short retry hint: the browser's EventSource reconnects after it, sending Last-Event-ID.
        var host = Own(await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Bridges:Sse:RetryMs"] = "300",
            ["Bridges:Sse:RetryJitterMs"] = "200",
        }));
        var proxy = Own(new TcpProxy(host.HttpPort));
        var device = await host.ConnectMqttAsync("line-4");
        var page = await NewPageAsync();
        var sseRequests = RecordSseRequests(page);
        await page.GotoAsync(new Uri(proxy.BaseUri, "explorer.html?transport=sse&filter=" + Uri.EscapeDataString("devices/line-4/#")).ToString());
        await DashboardPage.WaitForSubscriptionAsync(page);

        for (var i = 1; i <= 20; i++) await TestBridges.PublishAsync(device, "devices/line-4/count", i.ToString());
        await DashboardPage.WaitForRowsAsync(page, 20);

        Assert.True(proxy.DropAll() > 0, "no connection was open through the proxy");
        // Published while the stream is down or reconnecting: only the resume can bring these.
        for (var i = 21; i <= 40; i++) await TestBridges.PublishAsync(device, "devices/line-4/count", i.ToString());
        await DashboardPage.WaitForRowsAsync(page, 40);

        // A repeat would take the place of a later message among the first 40 rows, a loss would leave a hole.
        Assert.Equal(Enumerable.Range(1, 40).Select(i => i.ToString()), await DashboardPage.ExplorerPayloadsAsync(page));
        Assert.True(sseRequests.Count >= 2, $"the stream was not reopened: {sseRequests.Count} /sse request(s)");
        var resumed = false;
        foreach (var request in sseRequests.Skip(1))
        {
            resumed |= await request.HeaderValueAsync("last-event-id") is { Length: > 0 } || request.Url.Contains("lastEventId=", StringComparison.Ordinal);
        }
        Assert.True(resumed, "no reconnect carried the last position (Last-Event-ID or lastEventId)");
        Assert.Equal("sse", await DashboardPage.TransportAsync(page));
    }

    [Fact]
    public async Task The_client_falls_back_to_sse_when_the_websocket_is_refused()
    {
        ExpectConsoleError(@"^WebSocket connection to 'ws://[^']*/ws' failed");
        var host = Own(await TestBridges.StartAsync());
        var proxy = Own(new TcpProxy(host.HttpPort));
        proxy.RefusedPathPrefixes.Add("/ws");
        var device = await host.ConnectMqttAsync("tank-2");
        var page = await NewPageAsync();
        var sseRequests = RecordSseRequests(page);
        await page.GotoAsync(new Uri(proxy.BaseUri, "explorer.html?filter=" + Uri.EscapeDataString("devices/tank-2/#")).ToString());
        await DashboardPage.WaitForSubscriptionAsync(page);

        for (var i = 1; i <= 5; i++) await TestBridges.PublishAsync(device, "devices/tank-2/level", $"{{\"level\":{i}}}");
        await DashboardPage.WaitForRowsAsync(page, 5);

        Assert.Equal(Enumerable.Range(1, 5).Select(i => $"{{\"level\":{i}}}"), await DashboardPage.ExplorerPayloadsAsync(page));
        Assert.Equal("sse", await DashboardPage.TransportAsync(page));
        Assert.Contains(proxy.RequestHeads, h => h.StartsWith("GET /ws", StringComparison.Ordinal));
        Assert.NotEmpty(sseRequests);
        await Assertions.Expect(page.Locator("#transport")).ToHaveTextAsync("live via SSE");
        await BrowserFixture.ScreenshotAsync(page, "explorer-sse-fallback");
    }

    /// <summary>The page's requests to /sse, in order (the proxy sees only the first request of a kept-alive connection).</summary>
    static ConcurrentQueue<IRequest> RecordSseRequests(IPage page)
    {
        var requests = new ConcurrentQueue<IRequest>();
        page.Request += (_, request) =>
        {
            if (new Uri(request.Url).AbsolutePath == "/sse") requests.Enqueue(request);
        };
        return requests;
    }
}
