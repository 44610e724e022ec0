using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Kafka;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Kafka.KafkaTestKit;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary><see cref="KafkaReplayer"/> against librdkafka's mock cluster: ranges, filters, time bounds, resume.</summary>
public sealed class KafkaReplayerTests
{
    static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Produces forwarder-format records for <paramref name="messages"/> and waits until Kafka has them all.</summary>
    internal static async Task ProduceAsync(KafkaMockCluster kafka, string kafkaTopic, IEnumerable<MqttMessage> messages, int? partition = null)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig { BootstrapServers = kafka.BootstrapServers, EnableIdempotence = true, LingerMs = 0 }).Build();
        foreach (var message in messages)
        {
            var record = KafkaRecordFormat.Encode(message, KafkaKeySource.ClientId);
            if (partition is { } p) await producer.ProduceAsync(new TopicPartition(kafkaTopic, p), record);
            else await producer.ProduceAsync(kafkaTopic, record);
        }
    }

    internal static MqttMessage Message(string topic, string payload, DateTimeOffset at, string clientId = "dev") => new()
    {
        Topic = topic,
        Payload = Encoding.UTF8.GetBytes(payload),
        QoS = MqttQualityOfServiceLevel.AtLeastOnce,
        PublisherClientId = clientId,
        ReceivedAt = at,
    };

    static async Task<List<KafkaRecord>> ReadAsync(KafkaMockCluster kafka, ReplayRequest request)
    {
        var records = new List<KafkaRecord>();
        using var timeout = new CancellationTokenSource(Timeouts.Default);
        await foreach (var record in new KafkaReplayer(kafka.BootstrapServers).ReadAsync(request, timeout.Token)) records.Add(record);
        return records;
    }

    static string Text(KafkaRecord record) => Encoding.UTF8.GetString(record.Payload);

    [Fact]
    public void Positions_parse_and_format_and_bad_text_is_named()
    {
        var position = KafkaPosition.Parse("tele.metry_1/3/42");
        Assert.Equal(new KafkaPosition("tele.metry_1", 3, 42), position);
        Assert.Equal("tele.metry_1/3/42", position.ToString());
        var list = KafkaPosition.ParseList("a/0/1, a/1/7");
        Assert.Equal("a/0/1,a/1/7", KafkaPosition.FormatList(list));
        foreach (var bad in new[] { "", "a/0", "a/x/1", "a/0/y", "/0/1", "bad topic/0/1", "a/-1/1", "a/0/-2" })
        {
            Assert.False(KafkaPosition.TryParse(bad, out _), bad);
        }
        var error = Assert.Throws<FormatException>(() => KafkaPosition.ParseList("a/0/1,a/0/2"));
        Assert.Contains("a/0 twice", error.Message);
        Assert.Contains("topic/partition/offset", Assert.Throws<FormatException>(() => KafkaPosition.Parse("a/0")).Message);
    }

    [Fact]
    public async Task Forwarded_messages_replay_from_earliest_with_positions_and_MQTT_fields()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("telemetry");
        await using var broker = await StartBrokerAsync(kafka, new() { ["Kafka:DefaultTopic"] = "telemetry", ["Kafka:DefaultMode"] = "Durable" });
        await using (var device = await MqttTestClient.ConnectAsync(broker, clientId: "replay-dev"))
        {
            for (var i = 0; i < 4; i++) Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "d/" + i, "m" + i)).ReasonCode);
            await PublishAsync(device, "d/r", "retained", configure: b => b.WithRetainFlag());
        }

        var records = await ReadAsync(kafka, new ReplayRequest { Topics = ["telemetry"] });

        Assert.Equal(["telemetry/0/0", "telemetry/0/1", "telemetry/0/2", "telemetry/0/3", "telemetry/0/4"], records.Select(r => r.Position.ToString()));
        Assert.Equal(["m0", "m1", "m2", "m3", "retained"], records.Select(Text));
        Assert.Equal(["d/0", "d/1", "d/2", "d/3", "d/r"], records.Select(r => r.Topic));
        Assert.All(records, r => Assert.Equal("replay-dev", r.ClientId));
        Assert.All(records, r => Assert.Equal(1, r.QoS));
        Assert.Equal([false, false, false, false, true], records.Select(r => r.Retain));
        Assert.All(records, r => Assert.InRange(r.Timestamp, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(1)));

        var limited = await ReadAsync(kafka, new ReplayRequest { Topics = ["telemetry"], From = ReplayFrom.FromOffset(1), Limit = 2 });
        Assert.Equal(["m1", "m2"], limited.Select(Text));
        var json = Encoding.UTF8.GetString(KafkaRecordFormat.ToJson(limited[0]));
        Assert.StartsWith("{\"position\":\"telemetry/0/1\",\"topic\":\"d/1\",\"ts\":\"", json);
        Assert.EndsWith("\"qos\":1,\"retain\":false,\"clientId\":\"replay-dev\",\"payload\":\"m1\",\"enc\":\"utf8\"}", json);
    }

    [Fact]
    public async Task An_MQTT_filter_reads_the_topics_its_rules_map_to_and_keeps_only_matching_records()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("sensors", partitions: 2);
        kafka.CreateTopic("mqtt");
        kafka.CreateTopic("other");
        var options = new KafkaOptions
        {
            Rules = [new KafkaRule { Filter = "site/+/temp", Topic = "sensors" }, new KafkaRule { Filter = "cmd/#", Topic = "other" }],
            DefaultTopic = "mqtt",
        };
        Assert.Equal(["sensors", "mqtt"], options.KafkaTopicsFor("site/#"));
        Assert.Equal(["other"], options.KafkaTopicsFor("$SYS/#").Concat(options.KafkaTopicsFor("cmd/x")).Where(t => t != "mqtt"));
        await ProduceAsync(kafka, "sensors", [Message("site/a/temp", "t1", T0, "a"), Message("site/b/temp", "t2", T0, "b")]);
        await ProduceAsync(kafka, "mqtt", [Message("site/a/humidity", "h1", T0), Message("home/a/temp", "x", T0)]);
        await ProduceAsync(kafka, "other", [Message("cmd/site/a", "c", T0)]);

        var records = await ReadAsync(kafka, new ReplayRequest { Topics = options.KafkaTopicsFor("site/#"), MqttFilter = "site/#" });

        Assert.Equal(["h1", "t1", "t2"], records.Select(Text).Order());
        Assert.Equal(2, records.Count(r => r.Position.Topic == "sensors"));
    }

    [Fact]
    public async Task A_time_range_is_found_by_searching_record_timestamps_when_the_cluster_cannot_answer_by_time()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("timed", partitions: 2);
        // partition 0: one record per second from T0; partition 1: one every two seconds, so the two differ
        await ProduceAsync(kafka, "timed", Enumerable.Range(0, 20).Select(i => Message("t/0", "p0-" + i, T0.AddSeconds(i))), partition: 0);
        await ProduceAsync(kafka, "timed", Enumerable.Range(0, 10).Select(i => Message("t/1", "p1-" + i, T0.AddSeconds(2 * i))), partition: 1);

        var from = T0.AddSeconds(7.5);
        var records = await ReadAsync(kafka, new ReplayRequest { Topics = ["timed"], From = ReplayFrom.FromTime(from), To = T0.AddSeconds(12) });

        Assert.Equal(["p0-8", "p0-9", "p0-10", "p0-11", "p0-12"], records.Where(r => r.Position.Partition == 0).Select(Text));
        Assert.Equal(["p1-4", "p1-5", "p1-6"], records.Where(r => r.Position.Partition == 1).Select(Text));
        Assert.Equal("timed/0/8", records.First(r => r.Position.Partition == 0).Position.ToString());

        // before everything, and after everything
        Assert.Equal(30, (await ReadAsync(kafka, new ReplayRequest { Topics = ["timed"], From = ReplayFrom.FromTime(T0.AddDays(-1)) })).Count);
        Assert.Empty(await ReadAsync(kafka, new ReplayRequest { Topics = ["timed"], From = ReplayFrom.FromTime(T0.AddDays(1)) }));
    }

    [Fact]
    public async Task Resuming_after_a_cursor_continues_with_no_gap_and_no_duplicate()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("resume", partitions: 3);
        var sent = Enumerable.Range(0, 30).Select(i => Message("r/" + (i % 5), "m" + i, T0.AddMilliseconds(i), "dev-" + (i % 7))).ToList();
        await ProduceAsync(kafka, "resume", sent);

        var replayer = new KafkaReplayer(kafka.BootstrapServers);
        var first = new List<KafkaRecord>();
        string cursorText;
        await using (var replay = await replayer.OpenAsync(new ReplayRequest { Topics = ["resume"], Limit = 11 }))
        {
            var cursor = new KafkaCursor(replay.Start);
            Assert.Equal("resume/0/-1,resume/1/-1,resume/2/-1", cursor.ToString());
            await foreach (var record in replay.ReadAllAsync())
            {
                first.Add(record);
                cursor.Advance(record.Position);
            }
            cursorText = cursor.ToString();
        }
        Assert.Equal(11, first.Count);

        var rest = await ReadAsync(kafka, new ReplayRequest { From = ReplayFrom.After(KafkaPosition.ParseList(cursorText)) });

        var all = first.Concat(rest).Select(Text).ToList();
        Assert.Equal(30, all.Count);
        Assert.Equal(sent.Select(m => Encoding.UTF8.GetString(m.Payload.Span)).Order(), all.Order());
        Assert.Empty(first.Select(r => r.Position).Intersect(rest.Select(r => r.Position)));
    }

    [Fact]
    public async Task A_missing_topic_and_a_bad_filter_are_refused_by_name()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("present");
        var replayer = new KafkaReplayer(kafka.BootstrapServers);
        var missing = await Assert.ThrowsAsync<ArgumentException>(() => replayer.OpenAsync(new ReplayRequest { Topics = ["absent"] }));
        Assert.Contains("'absent' does not exist", missing.Message);
        var filter = await Assert.ThrowsAsync<ArgumentException>(() => replayer.OpenAsync(new ReplayRequest { Topics = ["present"], MqttFilter = "a/#/b" }));
        Assert.Contains("'a/#/b'", filter.Message);
    }
}
