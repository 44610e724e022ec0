using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Retained;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// The retained topic tree against the linear scan it replaced (every retained topic tested with
/// <see cref="TopicValidation.Matches"/>), which stays the oracle of what a filter matches.
/// </summary>
public sealed class RetainedStoreTests
{
    static readonly DateTimeOffset Now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    // Levels that exercise the edges: empty levels ("a//b", leading and trailing "/"), $ topics, non-ASCII, prefixes.
    static readonly string[] Levels = ["a", "b", "ab", "", "$SYS", "$x", "x$", "ü"];

    static MqttMessage Message(string topic, string payload, DateTimeOffset? expiresAt = null) =>
        new() { Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), Retain = true, ExpiresAt = expiresAt };

    static string RandomTopic(Random random)
    {
        var levels = new string[random.Next(1, 6)];
        for (var i = 0; i < levels.Length; i++)
        {
            levels[i] = Levels[random.Next(Levels.Length)];
        }
        var topic = string.Join('/', levels);
        // a topic name is never empty; "" as the only level stands for "/"-only topics
        return topic.Length == 0 ? "/" : topic;
    }

    static string RandomFilter(Random random)
    {
        var levels = new List<string>();
        var count = random.Next(1, 6);
        for (var i = 0; i < count; i++)
        {
            levels.Add(random.Next(3) == 0 ? "+" : Levels[random.Next(Levels.Length)]);
        }
        if (random.Next(4) == 0)
        {
            levels.Add("#");
        }
        var filter = string.Join('/', levels);
        return filter.Length == 0 ? "/" : filter;
    }

    static List<MqttMessage> Oracle(Dictionary<string, MqttMessage> retained, string filter) =>
        retained.Values.Where(m => TopicValidation.Matches(filter, m.Topic)).OrderBy(m => m.Topic, StringComparer.Ordinal).ToList();

    static void AssertSameMatches(Dictionary<string, MqttMessage> retained, InMemoryRetainedStore store, string filter, string context)
    {
        var expected = Oracle(retained, filter);
        var actual = store.Match(filter, Now).OrderBy(m => m.Topic, StringComparer.Ordinal).ToList();
        if (!expected.SequenceEqual(actual))
        {
            Assert.Fail($"{context}, filter '{filter}': the linear scan matches [{string.Join(", ", expected.Select(m => $"'{m.Topic}'"))}], " +
                $"the tree [{string.Join(", ", actual.Select(m => $"'{m.Topic}'"))}]");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Tree_matches_exactly_what_the_linear_scan_matches(int seed)
    {
        var random = new Random(seed);
        var store = new InMemoryRetainedStore();
        var retained = new Dictionary<string, MqttMessage>(StringComparer.Ordinal);
        string[] fixedFilters = ["#", "+", "+/#", "/#", "/+", "+/+", "$SYS/#", "$SYS/+", "$x", "a/#", "a/+/#", "a//+", "ü/#"];
        for (var op = 0; op < 3000; op++)
        {
            var topic = RandomTopic(random);
            switch (random.Next(10))
            {
                case < 7:
                    var message = Message(topic, $"p{op}");
                    store.Set(message);
                    retained[topic] = message;
                    break;
                case < 9:
                    store.Set(Message(topic, ""));
                    retained.Remove(topic);
                    break;
                default:
                    Assert.Equal(retained.Remove(topic), store.Remove(topic));
                    break;
            }
            Assert.Equal(retained.Count, store.Count);
            if (op % 100 == 99)
            {
                foreach (var filter in fixedFilters)
                {
                    Assert.True(TopicValidation.IsValidTopicFilter(filter), filter);
                    AssertSameMatches(retained, store, filter, $"seed {seed}, op {op}");
                }
                for (var i = 0; i < 40; i++)
                {
                    var filter = RandomFilter(random);
                    Assert.True(TopicValidation.IsValidTopicFilter(filter), filter);
                    AssertSameMatches(retained, store, filter, $"seed {seed}, op {op}");
                }
            }
        }

        foreach (var topic in retained.Keys.ToList())
        {
            Assert.True(store.Remove(topic));
        }
        Assert.Equal(0, store.Count);
        Assert.Equal(0, store.NodeCount);
        Assert.Empty(store.Match("#", Now));
    }

    [Fact]
    public void Leading_wildcards_do_not_match_dollar_topics_but_later_ones_do()
    {
        var store = new InMemoryRetainedStore();
        foreach (var topic in new[] { "$SYS/broker/uptime", "$SYS", "a/$b", "a/b" })
        {
            store.Set(Message(topic, "x"));
        }
        Assert.Equal(["a/$b", "a/b"], Topics(store.Match("#", Now)));
        Assert.Equal(["a/$b", "a/b"], Topics(store.Match("+/+", Now)));
        Assert.Empty(store.Match("+/broker/uptime", Now));
        Assert.Empty(store.Match("+", Now));
        Assert.Equal(["$SYS", "$SYS/broker/uptime"], Topics(store.Match("$SYS/#", Now)));
        Assert.Equal(["$SYS/broker/uptime"], Topics(store.Match("$SYS/+/uptime", Now)));
        Assert.Equal(["a/$b", "a/b"], Topics(store.Match("a/+", Now)));
    }

    [Fact]
    public void Hash_matches_its_parent_level_and_plus_matches_empty_levels()
    {
        var store = new InMemoryRetainedStore();
        foreach (var topic in new[] { "a", "a/", "a//b", "/a", "/", "a/b/c" })
        {
            store.Set(Message(topic, "x"));
        }
        Assert.Equal(["a", "a/", "a//b", "a/b/c"], Topics(store.Match("a/#", Now)));
        Assert.Equal(["a/"], Topics(store.Match("a/+", Now)));
        Assert.Equal(["a//b"], Topics(store.Match("a/+/b", Now)));
        Assert.Equal(["/", "/a"], Topics(store.Match("/+", Now)));
        Assert.Equal(["/", "/a"], Topics(store.Match("/#", Now)));
        Assert.Equal(["/", "/a", "a/"], Topics(store.Match("+/+", Now)));
        Assert.Equal(["a"], Topics(store.Match("a", Now)));
    }

    [Fact]
    public void Clearing_topics_prunes_the_nodes_they_leave_empty()
    {
        var store = new InMemoryRetainedStore();
        store.Set(Message("a/b/c", "1"));
        store.Set(Message("a/b", "2"));
        store.Set(Message("a/x/y/z", "3"));
        Assert.Equal(6, store.NodeCount); // a, b, c, x, y, z

        store.Set(Message("a/x/y/z", ""));
        Assert.Equal(3, store.NodeCount);
        store.Set(Message("a/b", ""));
        Assert.Equal(3, store.NodeCount); // "a/b/c" still hangs below b
        Assert.Equal(["a/b/c"], Topics(store.Match("#", Now)));
        Assert.True(store.Remove("a/b/c"));
        Assert.Equal(0, store.NodeCount);
        Assert.False(store.Remove("a/b/c"));
        Assert.False(store.Remove("a/b"));

        for (var i = 0; i < 10_000; i++)
        {
            store.Set(Message($"fleet/{i % 100}/device-{i}/state", "on"));
        }
        Assert.Equal(10_000, store.Count);
        for (var i = 0; i < 10_000; i++)
        {
            store.Set(Message($"fleet/{i % 100}/device-{i}/state", ""));
        }
        Assert.Equal(0, store.Count);
        Assert.Equal(0, store.NodeCount);
    }

    [Fact]
    public void Expired_message_is_not_matched_and_is_removed_with_its_branch()
    {
        var store = new InMemoryRetainedStore();
        store.Set(Message("s/1/t", "old", Now.AddSeconds(-1)));
        store.Set(Message("s/2/t", "live", Now.AddMinutes(1)));
        store.Set(Message("s/3/t", "forever"));

        Assert.Equal(["s/2/t", "s/3/t"], Topics(store.Match("s/+/t", Now)));
        Assert.Equal(2, store.Count);
        Assert.Equal(5, store.NodeCount); // s, 2, t, 3, t
        Assert.Equal(["s/3/t"], Topics(store.Match("#", Now.AddMinutes(2))));
        Assert.Equal(1, store.Count);
        Assert.Equal(3, store.NodeCount);
    }

    [Fact]
    public async Task Concurrent_sets_clears_and_lookups_leave_the_tree_consistent()
    {
        var store = new InMemoryRetainedStore();
        const int Writers = 4;
        const int OpsPerWriter = 20_000;
        var finals = new Dictionary<string, MqttMessage>[Writers];
        var writersDone = 0;
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            // each writer owns its topics, so its own record is the final state of them
            var random = new Random(w);
            var mine = new Dictionary<string, MqttMessage>(StringComparer.Ordinal);
            for (var op = 0; op < OpsPerWriter; op++)
            {
                var topic = $"w{w}/{random.Next(20)}/{random.Next(20)}";
                if (random.Next(3) == 0)
                {
                    store.Set(Message(topic, ""));
                    mine.Remove(topic);
                }
                else
                {
                    var message = Message(topic, $"{op}");
                    store.Set(message);
                    mine[topic] = message;
                }
            }
            finals[w] = mine;
            Interlocked.Increment(ref writersDone);
        })).ToArray();
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            var filter = r == 0 ? "#" : "w1/+/#";
            for (var i = 0; i < 100_000 && Volatile.Read(ref writersDone) < Writers; i++)
            {
                foreach (var message in store.Match(filter, Now))
                {
                    Assert.True(TopicValidation.Matches(filter, message.Topic), $"'{message.Topic}' returned for '{filter}'");
                }
            }
        })).ToArray();
        await Task.WhenAll(writers.Concat(readers)).WaitAsync(Timeouts.Default);

        var retained = finals.SelectMany(f => f).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        Assert.Equal(retained.Count, store.Count);
        AssertSameMatches(retained, store, "#", "after the concurrent writers");
        foreach (var topic in retained.Keys)
        {
            Assert.True(store.Remove(topic));
        }
        Assert.Equal(0, store.NodeCount);
    }

    static List<string> Topics(IEnumerable<MqttMessage> messages) => messages.Select(m => m.Topic).Order(StringComparer.Ordinal).ToList();
}
