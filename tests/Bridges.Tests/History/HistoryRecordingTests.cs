using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.History;

/// <summary>Bridges:History:Record=WhileListened (the default): nothing is recorded while no browser listens.</summary>
public sealed class HistoryRecordingTests
{
    static readonly Dictionary<string, string?> WhileListened = new()
    {
        ["Bridges:History:Record"] = "WhileListened",
        ["Bridges:History:IdleSeconds"] = "0",
    };

    [Fact]
    public async Task Nothing_is_recorded_until_a_stream_listens_and_then_everything_is()
    {
        await using var bridges = await TestBridges.StartAsync(WhileListened);
        var mqtt = await bridges.ConnectMqttAsync();
        await TestBridges.PublishAsync(mqtt, "w/1", "before");
        Assert.Equal(0, bridges.Feed.History.HeldMessages);
        Assert.False(bridges.Feed.Recording);

        var sse = await bridges.OpenSseAsync("topic=w/%23&from=earliest");
        await TestBridges.PublishAsync(mqtt, "w/1", "after");
        var e = await sse.NextAsync();
        Assert.Equal("after", e.Json.GetProperty("payload").GetString());
        Assert.Equal(1, bridges.Feed.History.HeldMessages);
    }

    [Fact]
    public async Task A_resume_across_a_pause_in_recording_reports_a_gap()
    {
        await using var bridges = await TestBridges.StartAsync(WhileListened);
        var mqtt = await bridges.ConnectMqttAsync();
        var sse = await bridges.OpenSseAsync("topic=w/%23");
        await TestBridges.PublishAsync(mqtt, "w/1", "seen");
        var seen = await sse.NextAsync();
        await sse.DisposeAsync();
        await Wait.UntilAsync(() => !bridges.Feed.Recording, Timeouts.Default, "recording to stop after the last stream closed");
        await TestBridges.PublishAsync(mqtt, "w/1", "unrecorded");

        var resumed = await bridges.OpenSseAsync("topic=w/%23", lastEventId: seen.Id);
        var gap = await resumed.NextAsync();
        Assert.Equal("gap", gap.Event);
        Assert.Equal("history-truncated", gap.Json.GetProperty("reason").GetString());
    }
}
