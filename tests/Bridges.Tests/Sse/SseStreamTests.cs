using System.Net;
using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.Sse;

public sealed class SseStreamTests
{
    [Fact]
    public async Task Stream_starts_with_retry_and_delivers_published_messages_with_positions()
    {
        await using var bridges = await TestBridges.StartAsync();
        var sse = await bridges.OpenSseAsync("topic=devices/%2B/telemetry");
        Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
        Assert.Equal("text/event-stream", sse.Response.Content.Headers.ContentType?.MediaType);
        var first = await sse.ReadAsync();
        Assert.NotNull(first);
        Assert.InRange(first!.Retry!.Value, 2000, 3000);

        var mqtt = await bridges.ConnectMqttAsync("d1");
        await TestBridges.PublishAsync(mqtt, "devices/d1/telemetry", "{\"t\":21.5}");
        await TestBridges.PublishAsync(mqtt, "devices/d1/status", "ignored");
        await TestBridges.PublishAsync(mqtt, "devices/d2/telemetry", "{\"t\":3}");

        var events = await sse.NextManyAsync(2);
        Assert.Equal(["devices/d1/telemetry", "devices/d2/telemetry"], events.Select(e => e.Json.GetProperty("topic").GetString()));
        Assert.Equal("{\"t\":21.5}", events[0].Json.GetProperty("payload").GetString());
        Assert.Equal("utf8", events[0].Json.GetProperty("enc").GetString());
        Assert.Equal(1, events[0].Json.GetProperty("qos").GetInt32());
        Assert.False(events[0].Json.GetProperty("retain").GetBoolean());
        Assert.EndsWith("Z", events[0].Json.GetProperty("ts").GetString());
        Assert.NotNull(events[0].Id);
        Assert.NotEqual(events[0].Id, events[1].Id);
    }

    [Fact]
    public async Task Binary_payload_is_sent_as_base64()
    {
        await using var bridges = await TestBridges.StartAsync();
        var sse = await bridges.OpenSseAsync("topic=bin");
        await sse.ReadAsync();
        var mqtt = await bridges.ConnectMqttAsync();
        await mqtt.PublishAsync(new MQTTnet.MqttApplicationMessageBuilder().WithTopic("bin").WithPayload(new byte[] { 0xff, 0x00, 0xfe })
            .WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var e = await sse.NextAsync();
        Assert.Equal("base64", e.Json.GetProperty("enc").GetString());
        Assert.Equal(new byte[] { 0xff, 0x00, 0xfe }, Convert.FromBase64String(e.Json.GetProperty("payload").GetString()!));
    }

    [Fact]
    public async Task Resume_with_Last_Event_ID_across_two_topics_has_no_gap_and_no_duplicate_while_publishing_continues()
    {
        await using var bridges = await TestBridges.StartAsync();
        var mqtt = await bridges.ConnectMqttAsync();
        const int total = 400;
        var first = await bridges.OpenSseAsync("topic=a/%23&topic=b/%23");
        await first.ReadAsync();

        // a publisher that keeps going while the client disconnects and resumes
        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await TestBridges.PublishAsync(mqtt, i % 2 == 0 ? $"a/{i % 3}" : $"b/{i % 5}", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        });

        var seen = new List<int>();
        var firstBatch = await first.NextManyAsync(50);
        seen.AddRange(firstBatch.Select(e => int.Parse(e.Json.GetProperty("payload").GetString()!, System.Globalization.CultureInfo.InvariantCulture)));
        var resumeAt = first.LastEventId!;
        await first.DisposeAsync();

        var second = await bridges.OpenSseAsync("topic=a/%23&topic=b/%23", lastEventId: resumeAt);
        while (seen.Count < total)
        {
            var e = await second.NextAsync();
            Assert.Equal("message", e.Event);
            seen.Add(int.Parse(e.Json.GetProperty("payload").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        }
        await publishing;
        Assert.Equal(Enumerable.Range(0, total), seen);
    }

    [Fact]
    public async Task Last_Event_ID_header_wins_over_the_query_parameter()
    {
        await using var bridges = await TestBridges.StartAsync();
        var mqtt = await bridges.ConnectMqttAsync();
        for (var i = 0; i < 3; i++) await TestBridges.PublishAsync(mqtt, "t/x", $"m{i}");
        var all = await bridges.OpenSseAsync("topic=t/x&from=earliest");
        var events = await all.NextManyAsync(3);
        var sse = await bridges.OpenSseAsync($"topic=t/x&lastEventId={Uri.EscapeDataString(events[0].Id!)}", lastEventId: events[1].Id);
        var next = await sse.NextAsync();
        Assert.Equal("m2", next.Json.GetProperty("payload").GetString());
        var byQuery = await bridges.OpenSseAsync($"topic=t/x&lastEventId={Uri.EscapeDataString(events[0].Id!)}");
        Assert.Equal("m1", (await byQuery.NextAsync()).Json.GetProperty("payload").GetString());
    }

    [Fact]
    public async Task Gap_event_when_history_no_longer_reaches_the_position_then_oldest_held_follows()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:History:MessagesPerTopic"] = "3" });
        var mqtt = await bridges.ConnectMqttAsync();
        await TestBridges.PublishAsync(mqtt, "g/1", "m0");
        var all = await bridges.OpenSseAsync("topic=g/%23&from=earliest");
        var m0 = await all.NextAsync();
        for (var i = 1; i <= 5; i++) await TestBridges.PublishAsync(mqtt, "g/1", $"m{i}");

        var resumed = await bridges.OpenSseAsync("topic=g/%23", lastEventId: m0.Id);
        var gap = await resumed.NextAsync();
        Assert.Equal("gap", gap.Event);
        Assert.Equal("history-truncated", gap.Json.GetProperty("reason").GetString());
        Assert.Equal(m0.Id, gap.Json.GetProperty("requested").GetString());
        var next = await resumed.NextAsync();
        Assert.Equal("m3", next.Json.GetProperty("payload").GetString());
        Assert.Equal(next.Id, gap.Json.GetProperty("resumedFrom").GetString());
        Assert.False(string.IsNullOrEmpty(gap.Json.GetProperty("advice").GetString()));
    }

    [Fact]
    public async Task Position_from_another_epoch_is_an_unknown_position_gap()
    {
        await using var bridges = await TestBridges.StartAsync();
        var mqtt = await bridges.ConnectMqttAsync();
        await TestBridges.PublishAsync(mqtt, "u/1", "held");
        var sse = await bridges.OpenSseAsync("topic=u/1", lastEventId: "deadbeef-7");
        var gap = await sse.NextAsync();
        Assert.Equal("gap", gap.Event);
        Assert.Equal("unknown-position", gap.Json.GetProperty("reason").GetString());
        Assert.Equal("held", (await sse.NextAsync()).Json.GetProperty("payload").GetString());
    }

    [Fact]
    public async Task No_gap_when_history_still_reaches_the_position_even_if_other_topics_were_evicted()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:History:MessagesPerTopic"] = "2" });
        var mqtt = await bridges.ConnectMqttAsync();
        await TestBridges.PublishAsync(mqtt, "keep/1", "k0");
        var sse0 = await bridges.OpenSseAsync("topic=keep/1&from=earliest");
        var k0 = await sse0.NextAsync();
        for (var i = 0; i < 5; i++) await TestBridges.PublishAsync(mqtt, "other/1", $"o{i}");
        await TestBridges.PublishAsync(mqtt, "keep/1", "k1");
        var sse = await bridges.OpenSseAsync("topic=keep/1", lastEventId: k0.Id);
        var e = await sse.NextAsync();
        Assert.Equal("message", e.Event);
        Assert.Equal("k1", e.Json.GetProperty("payload").GetString());
    }

    [Fact]
    public async Task Heartbeat_comments_are_sent_when_idle()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:Sse:HeartbeatSeconds"] = "1" });
        var sse = await bridges.OpenSseAsync("topic=quiet");
        SseEvent? e;
        do
        {
            e = await sse.ReadAsync();
        }
        while (e is { Comment: null });
        Assert.Equal("hb", e!.Comment);
    }

    [Theory]
    [InlineData("", HttpStatusCode.BadRequest)]
    [InlineData("topic=a/%23/b", HttpStatusCode.BadRequest)]
    [InlineData("topic=%24share/g/a", HttpStatusCode.BadRequest)]
    [InlineData("topic=a%2Bb", HttpStatusCode.BadRequest)]
    public async Task Invalid_filters_are_refused_with_400_and_a_reason(string query, HttpStatusCode expected)
    {
        await using var bridges = await TestBridges.StartAsync();
        var sse = await bridges.OpenSseAsync(query);
        Assert.Equal(expected, sse.StatusCode);
        var body = System.Text.Json.JsonDocument.Parse(await sse.ReadBodyAsync()).RootElement;
        Assert.False(string.IsNullOrEmpty(body.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task Too_many_filters_and_too_many_streams_are_refused()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Bridges:Sse:MaxFiltersPerStream"] = "2",
            ["Bridges:Sse:MaxStreamsPerClient"] = "2",
        });
        Assert.Equal(HttpStatusCode.BadRequest, (await bridges.OpenSseAsync("topic=a&topic=b&topic=c")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await bridges.OpenSseAsync("topic=a")).StatusCode);
        var second = await bridges.OpenSseAsync("topic=b");
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await bridges.OpenSseAsync("topic=c")).StatusCode);
        await second.DisposeAsync();
        await Wait.UntilAsync(() => bridges.Metrics.SseOpen == 1, Timeouts.Default, "the closed stream to be released");
        Assert.Equal(HttpStatusCode.OK, (await bridges.OpenSseAsync("topic=c")).StatusCode);
    }
}
