using System.Text;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Tests.Infrastructure;
using IotRealtime.Broker.Kafka;
using MQTTnet;

namespace IotRealtime.Bridges.Tests.History;

/// <summary>
/// <see cref="KafkaHistory"/> against a broker that forwards into librdkafka's mock cluster (durable mode, so a PUBACK
/// means the record is in Kafka): two MQTT subtrees go to two Kafka topics, one of them with two partitions.
/// </summary>
public sealed class KafkaHistoryTests
{
    static readonly string[] Filters = ["a/#", "b/#"];

    static async Task<TestBridges> StartBrokerAsync(KafkaMockCluster kafka) => await TestBridges.StartAsync(new Dictionary<string, string?>
    {
        ["Kafka:BootstrapServers"] = kafka.BootstrapServers,
        ["Kafka:LingerMs"] = "0",
        ["Kafka:ShutdownFlushMs"] = "2000",
        ["Kafka:Rules:0:Filter"] = "a/#",
        ["Kafka:Rules:0:Topic"] = "alpha",
        ["Kafka:Rules:0:Mode"] = "Durable",
        ["Kafka:Rules:1:Filter"] = "b/#",
        ["Kafka:Rules:1:Topic"] = "beta",
        ["Kafka:Rules:1:Mode"] = "Durable",
        ["Kafka:Rules:2:Filter"] = "c/#",
        ["Kafka:Rules:2:Topic"] = "gamma",
        ["Kafka:Rules:2:Mode"] = "Durable",
    });

    static KafkaMockCluster StartKafka()
    {
        var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("alpha");
        kafka.CreateTopic("beta", partitions: 2);
        kafka.CreateTopic("gamma");
        return kafka;
    }

    static KafkaHistory History(KafkaMockCluster kafka) =>
        new(new KafkaReplayer(kafka.BootstrapServers) { RequestTimeout = Timeouts.Default }, ["alpha", "beta", "gamma"]);

    /// <summary>Publishes <paramref name="count"/> messages alternating over a/…, b/… (two device keys) and c/…; returns the a/ and b/ payloads.</summary>
    static async Task<List<string>> PublishAsync(IMqttClient client, string tag, int count)
    {
        var sent = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var topic = (i % 3) switch { 0 => $"a/d{i % 2}", 1 => $"b/d{i % 4}", _ => "c/other" };
            var payload = $"{tag}-{i}";
            await TestBridges.PublishAsync(client, topic, payload);
            if (!topic.StartsWith('c')) sent.Add(payload);
        }
        return sent;
    }

    static List<string> Payloads(HistoryRead read) => read.Messages.Select(m => Encoding.UTF8.GetString(m.Payload.Span)).ToList();

    /// <summary>
    /// Per MQTT topic and publisher, the publish order must hold (Kafka orders per partition, and the forwarder keys
    /// records by client id, so one publisher's messages share a partition).
    /// </summary>
    static void AssertPerTopicOrder(HistoryRead read)
    {
        var parsed = read.Messages.Select(m => (m.Topic, Parts: Encoding.UTF8.GetString(m.Payload.Span).Split('-')));
        foreach (var group in parsed.GroupBy(p => (p.Topic, Tag: p.Parts[0])))
        {
            var indexes = group.Select(p => int.Parse(p.Parts[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(indexes.Order(), indexes);
        }
    }

    [Fact]
    public async Task Resume_after_a_restart_delivers_every_later_message_exactly_once_across_topics()
    {
        await using var kafka = StartKafka();
        List<string> first, second;
        HistoryRead seen;
        await using (var broker = await StartBrokerAsync(kafka))
        {
            var mqtt = await broker.ConnectMqttAsync();
            first = await PublishAsync(mqtt, "one", 18);
            seen = await History(kafka).ReadAsync(Filters, HistoryStart.Earliest);
            Assert.Null(seen.Gap);
            Assert.Equal(first.Order(), Payloads(seen).Order());
            Assert.All(seen.Messages, m => Assert.StartsWith(KafkaHistory.PositionPrefix, m.Id));
        }

        // The client saw the first 7 messages; the broker (and its in-memory history) is gone and comes back, and
        // publishing goes on.
        var lastSeen = seen.Messages[6].Id;
        var before = Payloads(seen).Take(7).ToList();
        await using (var broker = await StartBrokerAsync(kafka))
        {
            var mqtt = await broker.ConnectMqttAsync();
            second = await PublishAsync(mqtt, "two", 12);
        }

        var resumed = await History(kafka).ReadAsync(Filters, HistoryStart.After(lastSeen));
        Assert.Null(resumed.Gap);
        var expected = first.Concat(second).Except(before).Order().ToList();
        Assert.Equal(expected, Payloads(resumed).Order().ToList());
        Assert.Equal(Payloads(resumed).Count, Payloads(resumed).Distinct().Count());
        AssertPerTopicOrder(resumed);
        Assert.DoesNotContain(resumed.Messages, m => m.Topic.StartsWith('c'));

        // Resuming after the read's last position (or its last message) gives nothing more.
        Assert.Empty((await History(kafka).ReadAsync(Filters, HistoryStart.After(resumed.LastPosition))).Messages);
        Assert.Empty((await History(kafka).ReadAsync(Filters, HistoryStart.After(resumed.Messages[^1].Id))).Messages);
    }

    [Fact]
    public async Task Every_message_position_resumes_exactly_after_that_message()
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var mqtt = await broker.ConnectMqttAsync();
        await PublishAsync(mqtt, "x", 12);
        var history = History(kafka);
        var all = await history.ReadAsync(["a/#"], HistoryStart.Earliest);
        Assert.All(all.Messages, m => Assert.StartsWith("a/", m.Topic, StringComparison.Ordinal));
        for (var i = 0; i < all.Messages.Count; i++)
        {
            var rest = await history.ReadAsync(["a/#"], HistoryStart.After(all.Messages[i].Id));
            Assert.Null(rest.Gap);
            Assert.Equal(Payloads(all).Skip(i + 1), Payloads(rest));
        }
    }

    [Fact]
    public async Task Live_start_returns_a_position_after_which_only_later_messages_come()
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var mqtt = await broker.ConnectMqttAsync();
        await PublishAsync(mqtt, "old", 9);
        var history = History(kafka);
        var live = await history.ReadAsync(Filters, HistoryStart.Live);
        Assert.Empty(live.Messages);
        Assert.Null(live.Gap);
        var later = await PublishAsync(mqtt, "new", 9);
        var read = await history.ReadAsync(Filters, HistoryStart.After(live.LastPosition));
        Assert.Equal(later.Order(), Payloads(read).Order());
    }

    [Fact]
    public async Task A_position_that_is_not_a_Kafka_cursor_or_is_ahead_of_Kafka_gets_an_unknown_position_gap_and_everything_held()
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var mqtt = await broker.ConnectMqttAsync();
        var sent = await PublishAsync(mqtt, "p", 6);
        var history = History(kafka);
        foreach (var bad in new[] { "0a1b-12", "k:", "k:alpha/x/3", "k:alpha/0/1,alpha/0/2", "k:alpha/0/999", "k:beta/7/0", "k:delta/0/1" })
        {
            var read = await history.ReadAsync(Filters, HistoryStart.After(bad));
            Assert.NotNull(read.Gap);
            Assert.Equal(GapReason.UnknownPosition, read.Gap.Reason);
            Assert.Equal(bad, read.Gap.Requested);
            Assert.Equal(read.Messages[0].Id, read.Gap.ResumedFrom);
            Assert.Equal(sent.Order(), Payloads(read).Order());
        }
    }

    [Fact]
    public void Bad_topics_are_refused_by_name()
    {
        var replayer = new KafkaReplayer("127.0.0.1:1");
        Assert.Throws<ArgumentException>(() => new KafkaHistory(replayer, []));
        var e = Assert.Throws<ArgumentException>(() => new KafkaHistory(replayer, ["bad topic"]));
        Assert.Contains("bad topic", e.Message, StringComparison.Ordinal);
    }
}
