using System.Text;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;

namespace IotRealtime.Bridges.Tests.History;

/// <summary>A history under test and the way messages get into it (for Kafka: produce and wait until readable).</summary>
public interface IHistoryHarness : IAsyncDisposable
{
    /// <summary>The history under test, read through the contract SSE and the WebSocket use.</summary>
    IHistorySource Source { get; }

    /// <summary>
    /// Appends a message and returns it once the history can read it, as the live feed hands it to streams (its id is
    /// its position in this history).
    /// </summary>
    Task<FeedMessage> AppendMessageAsync(string topic, string payload);
}

static class HistoryHarnessExtensions
{
    public static async Task<HistoryRead> ReadAsync(this IHistoryHarness harness, IReadOnlyList<string> filters, HistoryStart start) =>
        await harness.Source.ReadAsync(filters, start);

    public static async Task<string> AppendAsync(this IHistoryHarness harness, string topic, string payload) =>
        (await harness.AppendMessageAsync(topic, payload)).Id;
}

/// <summary>
/// The guarantees documented on <see cref="IHistorySource"/>, run against every implementation (the in-memory history
/// and <see cref="KafkaHistory"/>): derive, and create a harness that holds at least <c>messagesPerTopic</c> messages
/// on one topic appended alone, and no more, so eviction can be tested.
/// </summary>
public abstract class HistorySourceContract
{
    protected abstract Task<IHistoryHarness> CreateAsync(int messagesPerTopic);

    static List<string> Payloads(HistoryRead read) => read.Messages.Select(m => Encoding.UTF8.GetString(m.Payload.Span)).ToList();

    [Fact]
    public async Task Read_after_a_position_returns_later_matching_messages_in_order()
    {
        await using var h = await CreateAsync(100);
        var p0 = await h.AppendAsync("a/1", "0");
        await h.AppendAsync("b/1", "1");
        await h.AppendAsync("a/2", "2");
        await h.AppendAsync("c/1", "3");
        await h.AppendAsync("a/1", "4");
        var read = await h.ReadAsync(["a/#", "b/1"], HistoryStart.After(p0));
        Assert.Null(read.Gap);
        Assert.Equal(["1", "2", "4"], Payloads(read));
    }

    [Fact]
    public async Task Earliest_returns_everything_held_for_the_filters()
    {
        await using var h = await CreateAsync(100);
        await h.AppendAsync("a/1", "0");
        await h.AppendAsync("b/1", "1");
        await h.AppendAsync("a/1", "2");
        var read = await h.ReadAsync(["a/+"], HistoryStart.Earliest);
        Assert.Null(read.Gap);
        Assert.Equal(["0", "2"], Payloads(read));
    }

    [Fact]
    public async Task Read_at_the_newest_position_is_empty_without_gap()
    {
        await using var h = await CreateAsync(100);
        await h.AppendAsync("a/1", "0");
        var last = await h.AppendAsync("a/1", "1");
        var read = await h.ReadAsync(["#"], HistoryStart.After(last));
        Assert.Null(read.Gap);
        Assert.Empty(read.Messages);
    }

    [Fact]
    public async Task Evicted_messages_after_the_position_are_reported_as_a_gap_and_the_oldest_held_follows()
    {
        await using var h = await CreateAsync(2);
        var p0 = await h.AppendAsync("a/1", "0");
        for (var i = 1; i <= 4; i++) await h.AppendAsync("a/1", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var read = await h.ReadAsync(["a/1"], HistoryStart.After(p0));
        Assert.NotNull(read.Gap);
        Assert.Equal(GapReason.HistoryTruncated, read.Gap!.Reason);
        Assert.Equal(p0, read.Gap.Requested);
        Assert.Equal(["3", "4"], Payloads(read));
        Assert.Equal(read.Messages[0].Id, read.Gap.ResumedFrom);
    }

    [Fact]
    public async Task Unknown_or_malformed_positions_are_a_gap_with_everything_held()
    {
        await using var h = await CreateAsync(100);
        await h.AppendAsync("a/1", "0");
        foreach (var position in new[] { "not-a-position", "garbage", "zz-1" })
        {
            var read = await h.ReadAsync(["a/1"], HistoryStart.After(position));
            Assert.Equal(GapReason.UnknownPosition, read.Gap?.Reason);
            Assert.Equal(["0"], Payloads(read));
        }
    }

    [Fact]
    public async Task A_followed_stream_skips_what_its_read_covered_and_sends_positions_a_resume_continues_from()
    {
        await using var h = await CreateAsync(100);
        var covered = await h.AppendMessageAsync("a/1", "0");
        var read = await h.ReadAsync(["a/1"], HistoryStart.Earliest);
        Assert.Equal(["0"], Payloads(read));
        var later = await h.AppendMessageAsync("a/1", "1");
        var cursor = h.Source.Follow(read);
        // the feed hands both to a stream registered before the read: the first was replayed, the second is new
        Assert.False(cursor.Take(covered, out _));
        Assert.True(cursor.Take(later, out var ownId));
        Assert.False(cursor.Take(later, out _));
        var resumed = await h.ReadAsync(["a/1"], HistoryStart.After(ownId ?? later.Id));
        Assert.Null(resumed.Gap);
        Assert.Empty(resumed.Messages);
        // and the read's own position resumes exactly with the message sent live
        var fromRead = await h.ReadAsync(["a/1"], HistoryStart.After(read.LastPosition));
        Assert.Null(fromRead.Gap);
        Assert.Equal(["1"], Payloads(fromRead));
    }

    [Fact]
    public async Task Live_reads_nothing()
    {
        await using var h = await CreateAsync(100);
        await h.AppendAsync("a/1", "0");
        Assert.Empty((await h.ReadAsync(["#"], HistoryStart.Live)).Messages);
    }
}

/// <summary>The embedded in-memory history.</summary>
public sealed class MemoryHistoryContractTests : HistorySourceContract
{
    protected override Task<IHistoryHarness> CreateAsync(int messagesPerTopic) =>
        Task.FromResult<IHistoryHarness>(new Harness(new MemoryHistory(new HistoryOptions { MessagesPerTopic = messagesPerTopic })));

    sealed class Harness(MemoryHistory history) : IHistoryHarness
    {
        public IHistorySource Source => history;

        public Task<FeedMessage> AppendMessageAsync(string topic, string payload) => Task.FromResult(history.Append(topic, Encoding.UTF8.GetBytes(payload)));

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
