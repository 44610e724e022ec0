using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// <see cref="TopicFilterIndex{T}"/>, which the bridges' feed hub and Kafka forwarding rules use: every match equals a
/// scan of all filters with <see cref="TopicFilter.Matches(string, string)"/>, and the first match is that of the
/// filters in the order added.
/// </summary>
public sealed class TopicFilterIndexTests
{
    static readonly string[] Filters = ["a/b", "a/+", "#", "+/b", "a/#", "$SYS/#", "a", "a/b/c", "+/+/c", "x/#"];

    static readonly string[] Topics = ["a/b", "a", "a/b/c", "b/b", "$SYS/x", "x", "x/y/z", "q/r/c", "a/"];

    static TopicFilterIndex<int> Index(IEnumerable<string> filters)
    {
        var index = new TopicFilterIndex<int>();
        var i = 0;
        foreach (var filter in filters) Assert.True(index.TryAdd(filter, i++));
        return index;
    }

    [Fact]
    public void Matching_returns_every_filter_that_matches_and_no_other()
    {
        var index = Index(Filters);
        foreach (var topic in Topics)
        {
            var got = new List<int>();
            foreach (var value in index.Matching(topic)) got.Add(value);
            var expected = Enumerable.Range(0, Filters.Length).Where(i => TopicFilter.Matches(Filters[i], topic));
            Assert.Equal(expected.Order(), got.Order());
        }
    }

    [Fact]
    public void First_match_is_the_earliest_added_matching_filter_exact_or_wildcard()
    {
        var index = Index(Filters);
        foreach (var topic in Topics)
        {
            var expected = Array.FindIndex(Filters, f => TopicFilter.Matches(f, topic));
            Assert.Equal(expected >= 0, index.TryFirstMatch(topic, out var first));
            if (expected >= 0) Assert.Equal(expected, first);
        }
        // an exact filter added after a matching wildcard does not win
        var later = Index(["a/+", "a/b"]);
        Assert.True(later.TryFirstMatch("a/b", out var value));
        Assert.Equal(0, value);
    }

    [Fact]
    public void A_repeated_filter_is_refused_and_a_removed_one_no_longer_matches()
    {
        var index = Index(["a/+", "a/b"]);
        Assert.False(index.TryAdd("a/+", 9));
        Assert.False(index.TryAdd("a/b", 9));
        Assert.Equal(2, index.Count);
        Assert.True(index.Remove("a/+"));
        Assert.False(index.Remove("a/+"));
        Assert.True(index.TryFirstMatch("a/b", out var value));
        Assert.Equal(1, value);
        Assert.False(index.TryFirstMatch("a/c", out _));
        Assert.True(index.Remove("a/b"));
        Assert.Equal(0, index.Count);
        Assert.Empty(Collect(index, "a/b"));
    }

    [Fact]
    public void A_filter_starting_with_a_wildcard_does_not_match_dollar_topics()
    {
        var index = Index(["#", "+/x"]);
        Assert.Empty(Collect(index, "$SYS/x"));
        Assert.False(index.TryFirstMatch("$SYS/x", out _));
    }

    static List<int> Collect(TopicFilterIndex<int> index, string topic)
    {
        var values = new List<int>();
        foreach (var value in index.Matching(topic)) values.Add(value);
        return values;
    }
}
