using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using IotRealtime.Bridges.Tests.Infrastructure;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Hostile;

/// <summary>
/// Clients that open a connection to /sse or /ws and never complete their request: Kestrel closes them after
/// Listeners:RequestHeadersTimeoutSeconds counted from their first byte (trickling does not extend it), answering 408,
/// and closes a connection that sends nothing at all after Listeners:KeepAliveTimeoutSeconds. Streams already open
/// keep receiving every message meanwhile.
/// </summary>
public sealed class SlowHeaderTests(ITestOutputHelper output)
{
    const int HeadersTimeoutSeconds = 2;
    const int KeepAliveTimeoutSeconds = 3;

    // one byte per interval: far slower than the timeout, so a timer restarted by each byte would never fire
    static readonly TimeSpan TrickleInterval = TimeSpan.FromMilliseconds(100);
    const int MaxTrickledBytes = 600;

    [Fact]
    public async Task Slow_header_clients_on_sse_and_ws_are_closed_after_the_header_timeout_while_streams_flow()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Listeners:RequestHeadersTimeoutSeconds"] = HeadersTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
            ["Listeners:KeepAliveTimeoutSeconds"] = KeepAliveTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
        });
        var port = bridges.HttpPort;
        var sse = await bridges.OpenSseAsync("topic=flow/%23");
        Assert.NotNull((await sse.ReadAsync())?.Retry);
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "flow/#" });
        await ws.ReceiveEventAsync("subscribed", "flow/#");
        var mqtt = await bridges.ConnectMqttAsync();

        var sseHead = RawHttpClient.RequestHead("/sse?topic=flow/%23", port, "Accept: text/event-stream");
        var wsHead = RawHttpClient.RequestHead("/ws", port, RawHttpClient.UpgradeHeaders());
        var hostile = new List<Task<(string Kind, RawClose Close, TimeSpan After)>>();
        for (var i = 0; i < 8; i++)
        {
            hostile.Add(Hostile("sse-trickle", () => TrickleAsync(port, sseHead)));
            hostile.Add(Hostile("ws-trickle", () => TrickleAsync(port, wsHead)));
        }
        for (var i = 0; i < 4; i++)
        {
            // the request line and part of the headers, then nothing more
            hostile.Add(Hostile("sse-unfinished", () => SendAndWaitAsync(port, sseHead + "X-Half: ")));
            hostile.Add(Hostile("ws-unfinished", () => SendAndWaitAsync(port, wsHead)));
            hostile.Add(Hostile("silent", () => SendAndWaitAsync(port, "")));
        }
        var allClosed = Task.WhenAll(hostile);

        // closed loop while they are open: each message must reach both streams before the next is published
        var published = 0;
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while (!allClosed.IsCompleted && published < 10_000 && DateTime.UtcNow < deadline)
        {
            var payload = published.ToString(CultureInfo.InvariantCulture);
            await TestBridges.PublishAsync(mqtt, "flow/1", payload);
            Assert.Equal(payload, (await sse.NextAsync()).Json.GetProperty("payload").GetString());
            Assert.Equal(payload, (await ws.ReceiveEventAsync("msg", "flow/#")).GetProperty("data").GetString());
            published++;
        }
        var results = await allClosed.WaitAsync(Timeouts.Default);

        foreach (var group in results.GroupBy(r => r.Kind))
        {
            output.WriteLine($"{group.Key}: closed after {string.Join(", ", group.Select(r => r.After.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)))} s");
        }
        output.WriteLine($"{published} messages reached both streams meanwhile");
        foreach (var (kind, close, _) in results)
        {
            if (kind == "silent") Assert.Equal(0, close.BytesRead);
            else Assert.StartsWith("HTTP/1.1 408", close.Head, StringComparison.Ordinal);
        }
        Assert.True(published > 0, "messages were published while the hostile clients were open");
        Assert.Equal(1, bridges.Metrics.SseOpen);
        Assert.Equal(1, bridges.Metrics.WebSocketsOpen);

        // the streams still flow after the attack
        await TestBridges.PublishAsync(mqtt, "flow/1", "after");
        Assert.Equal("after", (await sse.NextAsync()).Json.GetProperty("payload").GetString());
        Assert.Equal("after", (await ws.ReceiveEventAsync("msg", "flow/#")).GetProperty("data").GetString());
    }

    static async Task<(string Kind, RawClose Close, TimeSpan After)> Hostile(string kind, Func<Task<RawClose>> run)
    {
        var started = Stopwatch.StartNew();
        var close = await run();
        return (kind, close, started.Elapsed);
    }

    /// <summary>Sends <paramref name="head"/>, then one more header byte per <see cref="TrickleInterval"/> until the server closes.</summary>
    static async Task<RawClose> TrickleAsync(int port, string head)
    {
        await using var client = await RawHttpClient.ConnectAsync(port);
        var closed = client.ReadUntilClosedAsync(Timeouts.Default + TrickleInterval * MaxTrickledBytes);
        try
        {
            await client.SendAsync(head + "X-Slow: ");
            for (var i = 0; i < MaxTrickledBytes && !closed.IsCompleted; i++)
            {
                await Task.Delay(TrickleInterval);
                await client.SendAsync("a");
            }
        }
        catch (SocketException)
        {
            // the server closed while a byte was on its way
        }
        return await closed;
    }

    static async Task<RawClose> SendAndWaitAsync(int port, string text)
    {
        await using var client = await RawHttpClient.ConnectAsync(port);
        if (text.Length > 0) await client.SendAsync(text);
        return await client.ReadUntilClosedAsync(Timeouts.Default);
    }
}
