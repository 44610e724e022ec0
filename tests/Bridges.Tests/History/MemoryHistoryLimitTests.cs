using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Bridges.Tests.History;

/// <summary>The embedded history's own bounds: topics and bytes, and that a resume across them is never silent.</summary>
public sealed class MemoryHistoryLimitTests
{
    [Fact]
    public void Eviction_on_a_topic_the_filters_do_not_match_is_no_gap()
    {
        // limits per topic make this exact; Kafka retains per partition and answers such a read with a gap
        var history = new MemoryHistory(new HistoryOptions { MessagesPerTopic = 2 });
        var p0 = history.Append("keep", "k0"u8.ToArray()).Id;
        for (var i = 0; i < 5; i++) history.Append("noise", "n"u8.ToArray());
        history.Append("keep", "k1"u8.ToArray());
        var read = history.Read(["keep"], HistoryStart.After(p0));
        Assert.Null(read.Gap);
        Assert.Equal(["k1"], read.Messages.Select(m => System.Text.Encoding.UTF8.GetString(m.Payload.Span)));
    }

    [Fact]
    public void Topic_limit_evicts_the_least_recently_updated_topic_and_a_resume_into_it_is_a_gap()
    {
        var history = new MemoryHistory(new HistoryOptions { MaxTopics = 2 });
        var a = history.Append("a", "1"u8.ToArray());
        history.Append("b", "2"u8.ToArray());
        history.Append("a", "3"u8.ToArray());
        history.Append("c", "4"u8.ToArray());
        Assert.Equal(2, history.HeldTopics);
        Assert.Equal(1, history.Evicted(HistoryEviction.TopicCount));
        var start = new FeedPosition(history.Epoch, a.Seq - 1).ToString();
        Assert.Equal(GapReason.HistoryTruncated, history.Read(["b"], HistoryStart.After(start)).Gap?.Reason);
        Assert.Null(history.Read(["a"], HistoryStart.After(a.Id)).Gap);
    }

    [Fact]
    public void Byte_limit_holds_history_under_max_bytes()
    {
        var history = new MemoryHistory(new HistoryOptions { MaxBytes = 10_000, MessagesPerTopic = 1000 });
        for (var i = 0; i < 100; i++) history.Append($"t/{i % 3}", new byte[500]);
        Assert.True(history.HeldBytes <= 10_000);
        Assert.True(history.Evicted(HistoryEviction.Bytes) > 0);
        Assert.True(history.HeldMessages > 0);
    }

    [Fact]
    public void Positions_are_epoch_dash_seq_and_strictly_increasing_over_topics()
    {
        var history = new MemoryHistory(new HistoryOptions(), epoch: "e1");
        var ids = new[] { "x", "y", "x" }.Select(t => history.Append(t, "p"u8.ToArray()).Id).ToList();
        Assert.Equal(["e1-1", "e1-2", "e1-3"], ids);
    }

    [Fact]
    public void Invalid_options_name_their_keys()
    {
        var errors = new List<string>();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bridges:History:MessagesPerTopic"] = "0",
            ["Bridges:Sse:Overflow"] = "Sometimes",
            ["Bridges:Sse:HeartbeatSecs"] = "3",
            ["Bridges:TokenKey"] = "short",
        }).Build();
        BridgesOptions.Load(configuration, errors);
        Assert.Contains(errors, e => e.StartsWith("Bridges:History:MessagesPerTopic", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Bridges:Sse:Overflow", StringComparison.Ordinal) && e.Contains("DropOldest", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Bridges:Sse:HeartbeatSecs is not a known setting", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Bridges:TokenKey", StringComparison.Ordinal));
    }
}
