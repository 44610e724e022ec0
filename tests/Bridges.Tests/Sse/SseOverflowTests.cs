using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.Sse;

/// <summary>A reader that does not keep up: the feed appends straight into the stream's queue, far faster than a socket drains.</summary>
public sealed class SseOverflowTests
{
    static readonly byte[] Big = System.Text.Encoding.ASCII.GetBytes(new string('x', 64 * 1024));

    [Fact]
    public async Task Disconnect_policy_closes_the_stream_and_resume_continues_without_loss()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Bridges:Sse:QueueLength"] = "4",
            ["Bridges:Sse:Overflow"] = "Disconnect",
            ["Bridges:History:MessagesPerTopic"] = "1000",
            ["Bridges:History:MaxBytes"] = "200000000",
        });
        var sse = await bridges.OpenSseAsync("topic=s/%23");
        await sse.ReadAsync();
        for (var i = 0; i < 300; i++) bridges.Feed.Append("s/1", Big, 0, false, DateTimeOffset.UtcNow);
        var received = 0;
        while (await sse.ReadAsync() is { } e)
        {
            if (e.Event == "message") received++;
            Assert.NotEqual("gap", e.Event);
        }
        Assert.True(received < 300, "the stream should have been closed before everything was sent");
        await Wait.UntilAsync(() => bridges.Metrics.SseOpen == 0, Timeouts.Default, "the overflowed stream to close");

        var resumed = await bridges.OpenSseAsync("topic=s/%23", lastEventId: sse.LastEventId);
        var rest = 0;
        while (received + rest < 300)
        {
            var e = await resumed.NextAsync();
            Assert.Equal("message", e.Event);
            rest++;
        }
        Assert.Equal(300, received + rest);
    }

    [Fact]
    public async Task DropOldest_policy_sends_a_gap_event_where_messages_were_dropped()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Bridges:Sse:QueueLength"] = "4",
            ["Bridges:Sse:Overflow"] = "DropOldest",
        });
        var sse = await bridges.OpenSseAsync("topic=s/%23");
        Assert.NotNull((await sse.ReadAsync())?.Retry);
        // an id-only event: where the stream starts (EventSource keeps it as its last event id)
        Assert.NotNull((await sse.ReadAsync())?.Id);
        for (var i = 0; i < 300; i++) bridges.Feed.Append("s/1", Big, 0, false, DateTimeOffset.UtcNow);
        while (true)
        {
            // the position the client stands at (an id-only event sets it at the start, like EventSource)
            var lastId = sse.LastEventId;
            var e = await sse.NextAsync();
            if (e.Event == "gap")
            {
                Assert.Equal("queue-overflow", e.Json.GetProperty("reason").GetString());
                Assert.Equal(lastId, e.Json.GetProperty("requested").GetString());
                var next = await sse.NextAsync();
                Assert.Equal(next.Id, e.Json.GetProperty("resumedFrom").GetString());
                break;
            }
        }
        Assert.True(bridges.Metrics.Gaps("queue-overflow") >= 1);
    }
}
