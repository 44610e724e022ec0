using Microsoft.Playwright;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>Reads what the dashboard pages expose as window.iotDashboard (the state they draw from).</summary>
static class DashboardPage
{
    /// <summary>Waits until the page's live subscription is open (readyState 1): from then on, publishes reach it.</summary>
    public static Task WaitForSubscriptionAsync(IPage page) =>
        page.WaitForFunctionAsync("() => window.iotDashboard?.subscriptionState?.() === 1", null,
            new PageWaitForFunctionOptions { Timeout = (float)Timeouts.Default.TotalMilliseconds, PollingInterval = 50 });

    /// <summary>The explorer's rows as shown, oldest first: payload texts.</summary>
    public static async Task<string[]> ExplorerPayloadsAsync(IPage page) =>
        await page.EvaluateAsync<string[]>("() => window.iotDashboard.rows().map(r => r.payload).reverse()");

    /// <summary>Waits until the explorer shows <paramref name="count"/> rows.</summary>
    public static Task WaitForRowsAsync(IPage page, int count) =>
        page.WaitForFunctionAsync("n => window.iotDashboard.rows().length >= n", count,
            new PageWaitForFunctionOptions { Timeout = (float)Timeouts.Default.TotalMilliseconds, PollingInterval = 50 });

    /// <summary>The transport the page's realtime client uses now: "ws" or "sse".</summary>
    public static Task<string?> TransportAsync(IPage page) =>
        page.EvaluateAsync<string?>("() => window.iotDashboard.client?.transport ?? null");
}
