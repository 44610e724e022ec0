using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.Operations;

public sealed class MetricsAndDrainTests
{
    static long Sample(string metrics, string line)
    {
        var found = metrics.Split('\n').Single(l => l.StartsWith(line + " ", StringComparison.Ordinal));
        return long.Parse(found[(line.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Metrics_show_open_streams_channels_and_events_sent()
    {
        await using var bridges = await TestBridges.StartAsync();
        var sse = await bridges.OpenSseAsync("topic=m/%23");
        await sse.ReadAsync();
        var ws = await bridges.ConnectWebSocketAsync();
        await ws.SendAsync(new { op = "sub", ch = "m/#" });
        await ws.ReceiveEventAsync("subscribed");
        var mqtt = await bridges.ConnectMqttAsync();
        for (var i = 0; i < 3; i++) await TestBridges.PublishAsync(mqtt, "m/1", "x");
        await sse.NextManyAsync(3);
        for (var i = 0; i < 3; i++) await ws.ReceiveEventAsync("msg");

        var http = bridges.CreateHttpClient();
        var text = await http.GetStringAsync("metrics");
        Assert.Equal(1, Sample(text, "iotrealtime_bridges_sse_streams"));
        Assert.Equal(1, Sample(text, "iotrealtime_bridges_websockets"));
        Assert.Equal(1, Sample(text, "iotrealtime_bridges_websocket_channels"));
        Assert.Equal(3, Sample(text, "iotrealtime_bridges_events_sent_total{transport=\"sse\"}"));
        Assert.Equal(3, Sample(text, "iotrealtime_bridges_events_sent_total{transport=\"ws\"}"));
        Assert.Equal(3, Sample(text, "iotrealtime_bridges_history_messages"));
        Assert.Contains("# TYPE iotrealtime_bridges_gaps_total counter", text);
    }

    [Fact]
    public async Task Broker_drain_closes_bridge_streams_with_a_retry_hint_and_refuses_new_ones()
    {
        await using var bridges = await TestBridges.StartAsync();
        var sse = await bridges.OpenSseAsync("topic=d/%23");
        Assert.NotNull(await sse.ReadAsync());
        var ws = await bridges.ConnectWebSocketAsync();

        using var drain = await bridges.CreateHttpClient().PostAsync("api/drain", new StringContent("{\"windowSeconds\":1}", System.Text.Encoding.UTF8, "application/json"));
        Assert.True(drain.IsSuccessStatusCode, await drain.Content.ReadAsStringAsync());

        SseEvent? last = null;
        while (await sse.ReadAsync() is { } e) last = e;
        Assert.NotNull(last?.Retry);
        var closed = await Assert.ThrowsAsync<WebSocketClosedException>(() => ws.ReceiveAsync());
        Assert.Equal((System.Net.WebSockets.WebSocketCloseStatus)1012, closed.Status);
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, (await bridges.OpenSseAsync("topic=d/%23")).StatusCode);
    }
}
