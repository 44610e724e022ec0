using System.Globalization;
using System.Text.Json;
using IotRealtime.Bridges.Tests.Infrastructure;
using Xunit.Abstractions;

namespace IotRealtime.Bridges.Tests.Hostile;

/// <summary>
/// A client that subscribes to a busy topic on /sse or /ws and never reads its socket (a tiny receive buffer, no
/// reads). Its stream's memory stays within its queue (Bridges:*:QueueLength messages) plus the connection's response
/// buffer; it is closed by the overflow policy (Disconnect) or, under DropOldest, once a write has made no progress for
/// Bridges:*:StallTimeoutSeconds; and a reader of the same topic receives every message meanwhile, in order.
/// </summary>
[Collection(MemoryCollection.Name)]
public sealed class NeverReadingClientTests(ITestOutputHelper output)
{
    const int QueueLength = 256;
    const int PayloadBytes = 8 * 1024;
    const int Messages = 4_000;

    // how far the publisher may run ahead of the good reader: well inside its queue, so it never overflows
    const int Window = 64;

    // long enough that publishing everything ends before the stalled stream is closed, so its memory can be measured
    const int StallTimeoutSeconds = 20;

    // what a stuck stream may hold: its queue (each message's payload and its encoded frame) and Kestrel's 64 KB response buffer
    const long StreamBudget = QueueLength * (2L * PayloadBytes + 1024) + 64 * 1024;

    // everything else live in the process may move a little between the two measurements (pools, history of 16 messages)
    const long Slack = 8L * 1024 * 1024;

    [Theory]
    [InlineData("sse", "DropOldest")]
    [InlineData("sse", "Disconnect")]
    [InlineData("ws", "DropOldest")]
    [InlineData("ws", "Disconnect")]
    public async Task A_client_that_never_reads_is_bounded_and_closed_while_a_reader_of_the_same_topic_gets_every_message(string transport, string policy)
    {
        var webSocket = transport == "ws";
        var section = webSocket ? "Bridges:WebSocket:" : "Bridges:Sse:";
        var settings = new Dictionary<string, string?>
        {
            [section + "QueueLength"] = QueueLength.ToString(CultureInfo.InvariantCulture),
            [section + "Overflow"] = policy,
            [section + "StallTimeoutSeconds"] = StallTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
            ["Bridges:History:MessagesPerTopic"] = "16",
        };
        if (webSocket)
        {
            // pings the silent client would never answer must not be what closes it
            settings["Bridges:WebSocket:KeepAliveSeconds"] = "600";
            settings["Bridges:WebSocket:IdleTimeoutSeconds"] = "1200";
        }
        await using var bridges = await TestBridges.StartAsync(settings);
        var metrics = bridges.Metrics;
        long Open() => webSocket ? metrics.WebSocketsOpen : metrics.SseOpen;

        var credit = new SemaphoreSlim(Window);
        var received = new List<int>(Messages);
        Func<Task<JsonElement?>> next = webSocket ? await OpenWebSocketReaderAsync(bridges) : await OpenSseReaderAsync(bridges);
        var reading = Task.Run(async () =>
        {
            while (received.Count < Messages)
            {
                var payload = await next();
                if (payload is not { } p) continue;
                received.Add(int.Parse(p.GetString()![..8], CultureInfo.InvariantCulture));
                credit.Release();
            }
        });

        await using var hostile = await RawHttpClient.ConnectAsync(bridges.HttpPort, receiveBufferSize: 4096);
        if (webSocket)
        {
            await hostile.SendAsync(RawHttpClient.RequestHead("/ws", bridges.HttpPort, RawHttpClient.UpgradeHeaders()) + "\r\n");
            Assert.StartsWith("HTTP/1.1 101", await hostile.ReadResponseHeadAsync(), StringComparison.Ordinal);
            await hostile.SendWebSocketTextAsync("{\"op\":\"sub\",\"ch\":\"busy/#\"}");
            await Wait.UntilAsync(() => metrics.WebSocketChannels == 2, Timeouts.Default, "the silent client's channel");
        }
        else
        {
            await hostile.SendAsync(RawHttpClient.RequestHead("/sse?topic=busy/%23", bridges.HttpPort, "Accept: text/event-stream") + "\r\n");
            await Wait.UntilAsync(() => metrics.SseOpen == 2, Timeouts.Default, "the silent client's stream");
        }
        var mqtt = await bridges.ConnectMqttAsync();
        var before = LiveBytes();

        var filler = new string('x', PayloadBytes - 8);
        for (var seq = 0; seq < Messages; seq++)
        {
            if (!await credit.WaitAsync(Timeouts.Default))
            {
                if (reading.IsCompleted) await reading;
                Assert.Fail($"the reader fell behind at message {seq} (it has {received.Count})");
            }
            await TestBridges.PublishAsync(mqtt, "busy/1", seq.ToString("D8", CultureInfo.InvariantCulture) + filler);
        }
        await reading.WaitAsync(Timeouts.Default);
        var after = LiveBytes();
        var stillOpen = Open();
        output.WriteLine($"{transport} {policy}: live memory {before / 1024} KB before, {after / 1024} KB after {Messages} x {PayloadBytes / 1024} KB; "
            + $"stream budget {StreamBudget / 1024} KB + slack {Slack / 1024} KB; streams open {stillOpen}");

        Assert.Equal(Enumerable.Range(0, Messages), received);
        Assert.True(after - before <= StreamBudget + Slack, $"live memory grew by {(after - before) / 1024} KB, over the stuck stream's budget of {StreamBudget / 1024} KB (+ {Slack / 1024} KB slack)");
        if (policy == "DropOldest")
        {
            // still open (its writes stalled less than the timeout ago), so the measurement above included it
            Assert.Equal(2, stillOpen);
            await Wait.UntilAsync(() => metrics.StallDisconnects(webSocket) == 1 && Open() == 1, TimeSpan.FromSeconds(StallTimeoutSeconds) + Timeouts.Default,
                "the stalled stream to be closed");
        }
        else
        {
            await Wait.UntilAsync(() => metrics.OverflowDisconnects(webSocket) == 1 && Open() == 1, Timeouts.Default, "the overflowed stream to be closed");
            Assert.Equal(0, metrics.StallDisconnects(webSocket));
        }

        // from the client's side: whatever was buffered for it, then the end of the connection
        var close = await hostile.ReadUntilClosedAsync(Timeouts.Default);
        output.WriteLine($"the silent client read {close.BytesRead / 1024} KB after the server closed it (reset: {close.Reset})");
        Assert.Equal(1, Open());
    }

    static async Task<Func<Task<JsonElement?>>> OpenSseReaderAsync(TestBridges bridges)
    {
        var sse = await bridges.OpenSseAsync("topic=busy/%23");
        return async () =>
        {
            var e = await sse.NextAsync();
            Assert.True(e.Event == "message", $"the good reader got a {e.Event} event: {e.Data}");
            return e.Json.GetProperty("payload");
        };
    }

    static async Task<Func<Task<JsonElement?>>> OpenWebSocketReaderAsync(TestBridges bridges)
    {
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "busy/#" });
        await ws.ReceiveEventAsync("subscribed", "busy/#");
        return async () =>
        {
            var frame = await ws.ReceiveAsync();
            var ev = frame.GetProperty("ev").GetString();
            Assert.True(ev == "msg", $"the good reader got a {ev} frame: {frame}");
            return frame.GetProperty("data");
        };
    }

    static long LiveBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
