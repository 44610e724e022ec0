using System.Globalization;
using System.Net;
using System.Text.Json;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Host;
using IotRealtime.Bridges.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;

namespace IotRealtime.Bridges.Tests.History;

/// <summary>
/// The standalone bridges with Kafka history on (Bridges:History:Kafka): live feed, and SSE and WebSocket resume, from
/// the Kafka topics a broker forwards to in durable mode (librdkafka's mock cluster), across a restart of the bridges.
/// </summary>
public sealed class KafkaSseResumeTests
{
    const string Streams = "sse?topic=a/%23&topic=b/%23";

    static KafkaMockCluster StartKafka()
    {
        var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("alpha");
        kafka.CreateTopic("beta", partitions: 2);
        return kafka;
    }

    static Task<TestBridges> StartBrokerAsync(KafkaMockCluster kafka) => TestBridges.StartAsync(new Dictionary<string, string?>
    {
        ["Bridges:Enabled"] = "false",
        ["Kafka:BootstrapServers"] = kafka.BootstrapServers,
        ["Kafka:LingerMs"] = "0",
        ["Kafka:ShutdownFlushMs"] = "2000",
        ["Kafka:Rules:0:Filter"] = "a/#",
        ["Kafka:Rules:0:Topic"] = "alpha",
        ["Kafka:Rules:0:Mode"] = "Durable",
        ["Kafka:Rules:1:Filter"] = "b/#",
        ["Kafka:Rules:1:Topic"] = "beta",
        ["Kafka:Rules:1:Mode"] = "Durable",
    });

    static Task<BridgesHost> StartBridgesAsync(TestBridges broker, KafkaMockCluster kafka, params (string Key, string Value)[] extra) => BridgesHost.StartAsync(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Upstream:Host"] = "127.0.0.1",
        ["Upstream:Port"] = broker.MqttPort.ToString(CultureInfo.InvariantCulture),
        ["Listeners:BindAddress"] = "127.0.0.1",
        ["Listeners:HttpPort"] = "0",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Bridges:History:Kafka:BootstrapServers"] = kafka.BootstrapServers,
        ["Bridges:History:Kafka:Topics:0"] = "alpha",
        ["Bridges:History:Kafka:Topics:1"] = "beta",
    }).AddInMemoryCollection(extra.Select(e => new KeyValuePair<string, string?>(e.Key, e.Value))).Build());

    static HttpClient Http(BridgesHost bridges) => new() { BaseAddress = new Uri($"http://127.0.0.1:{bridges.HttpPort}/"), Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Publishes tag-from..tag-(to-1) alternating over a/d0, a/d1 and b/d0..b/d3; returns (topic, payload) in publish order.</summary>
    static async Task<List<(string Topic, string Payload)>> PublishAsync(IMqttClient client, string tag, int from, int to)
    {
        var sent = new List<(string, string)>();
        for (var i = from; i < to; i++)
        {
            var topic = i % 2 == 0 ? $"a/d{i % 4 / 2}" : $"b/d{i % 4}";
            var payload = $"{tag}-{i}";
            await TestBridges.PublishAsync(client, topic, payload);
            sent.Add((topic, payload));
        }
        return sent;
    }

    static (string Topic, string Payload) Of(SseEvent e) => (e.Json.GetProperty("topic").GetString()!, e.Json.GetProperty("payload").GetString()!);

    [Fact]
    public async Task Sse_resumes_from_Kafka_after_the_bridges_restart_with_no_gap_and_no_duplicate()
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var publisher = await broker.ConnectMqttAsync("pub-1");
        var before = await PublishAsync(publisher, "old", 0, 4); // already in Kafka before the stream: a live stream skips them

        List<(string Topic, string Payload)> first;
        string lastSeen;
        var seen = new List<(string Topic, string Payload)>();
        await using (var bridges = await StartBridgesAsync(broker, kafka))
        {
            using var http = Http(bridges);
            await using var sse = await SseReader.OpenAsync(http, Streams);
            Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
            first = await PublishAsync(publisher, "one", 0, 12);
            var events = await sse.NextManyAsync(7);
            Assert.All(events, e => Assert.Equal("message", e.Event));
            Assert.All(events, e => Assert.StartsWith("k:", e.Id, StringComparison.Ordinal));
            seen.AddRange(events.Select(Of));
            Assert.Subset(first.ToHashSet(), seen.ToHashSet());
            lastSeen = sse.LastEventId!;
        }

        // a new bridges process: nothing of the old one's memory is left; publishing goes on while the client resumes
        await using (var bridges = await StartBridgesAsync(broker, kafka))
        {
            using var http = Http(bridges);
            var publishing = PublishAsync(publisher, "two", 0, 20);
            await using var sse = await SseReader.OpenAsync(http, Streams, lastSeen);
            Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
            var second = await publishing;
            var expected = first.Concat(second).Except(seen).ToList();
            var events = await sse.NextManyAsync(expected.Count);
            Assert.All(events, e => Assert.Equal("message", e.Event));
            var got = events.Select(Of).ToList();
            Assert.Equal(expected.Order(), got.Order());
            Assert.DoesNotContain(got, m => before.Contains(m));
            foreach (var topic in expected.Select(m => m.Topic).Distinct())
            {
                Assert.Equal(expected.Where(m => m.Topic == topic), got.Where(m => m.Topic == topic));
            }

            // nothing more (no duplicate trails): the next event is the next publish
            await TestBridges.PublishAsync(publisher, "a/d0", "end");
            Assert.Equal(("a/d0", "end"), Of(await sse.NextAsync()));

            // and a resume from the last event of this stream gives only what follows it
            var last = sse.LastEventId!;
            await TestBridges.PublishAsync(publisher, "b/d1", "after");
            await using var again = await SseReader.OpenAsync(http, Streams, last);
            Assert.Equal(("b/d1", "after"), Of(await again.NextAsync()));
        }
    }

    [Theory]
    [InlineData("abc-5")]
    [InlineData("k:not-a-cursor")]
    public async Task A_position_that_is_not_a_Kafka_cursor_gets_an_explicit_gap_then_everything_Kafka_holds(string position)
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var publisher = await broker.ConnectMqttAsync("pub-2");
        var sent = await PublishAsync(publisher, "x", 0, 6);
        await using var bridges = await StartBridgesAsync(broker, kafka);
        using var http = Http(bridges);
        await using var sse = await SseReader.OpenAsync(http, Streams, position);
        var gap = await sse.NextAsync();
        Assert.Equal("gap", gap.Event);
        Assert.Equal("unknown-position", gap.Json.GetProperty("reason").GetString());
        Assert.Equal(position, gap.Json.GetProperty("requested").GetString());
        var events = await sse.NextManyAsync(sent.Count);
        Assert.Equal(sent.Order(), events.Select(Of).Order());
    }

    static readonly string[] Channels = ["a/#", "b/#"];

    static Uri WsUri(BridgesHost bridges) => new($"ws://127.0.0.1:{bridges.HttpPort}/ws");

    static (string Topic, string Payload) Of(JsonElement frame) => (frame.GetProperty("topic").GetString()!, frame.GetProperty("data").GetString()!);

    static string Ev(JsonElement frame) => frame.GetProperty("ev").GetString()!;

    [Fact]
    public async Task WebSocket_channels_resume_from_Kafka_after_the_bridges_restart_with_no_gap_and_no_duplicate()
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var publisher = await broker.ConnectMqttAsync("pub-3");
        var before = await PublishAsync(publisher, "old", 0, 4); // already in Kafka before the channels: live channels skip them

        List<(string Topic, string Payload)> first;
        var seen = new List<(string Topic, string Payload)>();
        var lastIds = new Dictionary<string, string>();
        await using (var bridges = await StartBridgesAsync(broker, kafka))
        {
            await using var ws = await WsTestClient.ConnectAsync(WsUri(bridges));
            foreach (var ch in Channels)
            {
                await ws.SendAsync(new { op = "sub", ch });
                lastIds[ch] = (await ws.ReceiveEventAsync("subscribed", ch)).GetProperty("id").GetString()!;
            }
            first = await PublishAsync(publisher, "one", 0, 12);
            for (var i = 0; i < 7; i++)
            {
                var message = await ws.ReceiveEventAsync("msg");
                var id = message.GetProperty("id").GetString()!;
                Assert.StartsWith("k:", id, StringComparison.Ordinal);
                lastIds[message.GetProperty("ch").GetString()!] = id;
                seen.Add(Of(message));
            }
            Assert.Subset(first.ToHashSet(), seen.ToHashSet());
        }

        // a new bridges process, so no in-memory history holds any of it: each channel resumes from Kafka with the last
        // id it received while publishing goes on
        await using (var bridges = await StartBridgesAsync(broker, kafka))
        {
            var publishing = PublishAsync(publisher, "two", 0, 20);
            await using var ws = await WsTestClient.ConnectAsync(WsUri(bridges));
            foreach (var ch in Channels) await ws.SendAsync(new { op = "sub", ch, from = lastIds[ch] });
            var second = await publishing;
            var expected = first.Concat(second).Except(seen).ToList();
            var got = new List<(string Topic, string Payload)>();
            var subscribed = 0;
            while (got.Count < expected.Count || subscribed < Channels.Length)
            {
                var frame = await ws.ReceiveAsync();
                Assert.True(Ev(frame) is "msg" or "subscribed", $"unexpected frame {frame}");
                if (Ev(frame) == "subscribed")
                {
                    subscribed++;
                    continue;
                }
                var topic = frame.GetProperty("topic").GetString()!;
                Assert.Equal(topic[..1] + "/#", frame.GetProperty("ch").GetString());
                got.Add(Of(frame));
            }
            Assert.Equal(expected.Order(), got.Order());
            Assert.DoesNotContain(got, m => before.Contains(m));
            foreach (var topic in expected.Select(m => m.Topic).Distinct())
            {
                Assert.Equal(expected.Where(m => m.Topic == topic), got.Where(m => m.Topic == topic));
            }

            // nothing more (no duplicate trails): the next frame is the next publish
            await TestBridges.PublishAsync(publisher, "a/d0", "end");
            var end = await ws.ReceiveAsync();
            Assert.Equal(("a/d0", "end"), Of(end));

            // and a resume from a channel's id on this socket gives only what follows it on that channel
            await TestBridges.PublishAsync(publisher, "b/d1", "after-b");
            await TestBridges.PublishAsync(publisher, "a/d1", "after-a");
            await using var again = await WsTestClient.ConnectAsync(WsUri(bridges));
            await again.SendAsync(new { op = "sub", ch = "a/#", from = end.GetProperty("id").GetString() });
            // from history or live (the read may come before the live feed consumed it): either way first and once
            var resumed = await again.ReceiveEventAsync("msg");
            Assert.Equal(("a/d1", "after-a"), Of(resumed));
            Assert.Equal("a/#", resumed.GetProperty("ch").GetString());
        }
    }

    [Fact]
    public async Task A_WebSocket_resume_older_than_the_memory_history_is_answered_from_Kafka_and_a_recent_one_from_memory()
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var publisher = await broker.ConnectMqttAsync("pub-5");
        // memory holds about four of these messages (each counts its payload, its topic twice and 200 bytes)
        await using var bridges = await StartBridgesAsync(broker, kafka, ("Bridges:History:MaxBytes", "1024"));
        var front = bridges.Services.GetRequiredService<KafkaFrontHistory>();
        await using var ws = await WsTestClient.ConnectAsync(WsUri(bridges));
        await ws.SendAsync(new { op = "sub", ch = "a/#" });
        await ws.ReceiveEventAsync("subscribed", "a/#");
        var sent = new List<(string Topic, string Payload)>();
        for (var i = 0; i < 12; i++)
        {
            sent.Add(($"a/d{i % 2}", $"m-{i}"));
            await TestBridges.PublishAsync(publisher, sent[^1].Topic, sent[^1].Payload);
        }
        var ids = new List<string>();
        foreach (var expected in sent)
        {
            var message = await ws.ReceiveEventAsync("msg");
            Assert.Equal(expected, Of(message));
            ids.Add(message.GetProperty("id").GetString()!);
        }

        // the second message is long gone from memory: Kafka answers, with every later message and no gap
        var kafkaReads = front.KafkaReads;
        var memoryReads = front.MemoryReads;
        await using (var old = await WsTestClient.ConnectAsync(WsUri(bridges)))
        {
            await old.SendAsync(new { op = "sub", ch = "a/#", from = ids[1] });
            var frames = await old.ReceiveUntilAsync(f => Ev(f) == "subscribed");
            Assert.All(frames[..^1], f => Assert.Equal("msg", Ev(f)));
            Assert.Equal(sent.Skip(2), frames[..^1].Select(Of));
        }
        Assert.Equal(kafkaReads + 1, front.KafkaReads);
        Assert.Equal(memoryReads, front.MemoryReads);

        // the eleventh is still in memory: memory answers, with the same guarantees
        await using (var recent = await WsTestClient.ConnectAsync(WsUri(bridges)))
        {
            await recent.SendAsync(new { op = "sub", ch = "a/#", from = ids[10] });
            var frames = await recent.ReceiveUntilAsync(f => Ev(f) == "subscribed");
            Assert.Equal([sent[11]], frames[..^1].Select(Of));
            // and live messages follow exactly once
            await TestBridges.PublishAsync(publisher, "a/d0", "live");
            Assert.Equal(("a/d0", "live"), Of(await recent.ReceiveAsync()));
        }
        Assert.Equal(memoryReads + 1, front.MemoryReads);
        Assert.Equal(kafkaReads + 1, front.KafkaReads);
    }

    [Fact]
    public async Task A_WebSocket_position_that_is_not_a_Kafka_cursor_gets_an_explicit_gap_then_everything_Kafka_holds()
    {
        await using var kafka = StartKafka();
        await using var broker = await StartBrokerAsync(kafka);
        var publisher = await broker.ConnectMqttAsync("pub-4");
        var sent = await PublishAsync(publisher, "x", 0, 6);
        await using var bridges = await StartBridgesAsync(broker, kafka);
        await using var ws = await WsTestClient.ConnectAsync(WsUri(bridges));
        await ws.SendAsync(new { op = "sub", ch = "a/#", from = "abc-5" });
        var gap = await ws.ReceiveAsync();
        Assert.Equal("gap", Ev(gap));
        Assert.Equal("unknown-position", gap.GetProperty("reason").GetString());
        Assert.Equal("abc-5", gap.GetProperty("requested").GetString());
        var frames = await ws.ReceiveUntilAsync(f => Ev(f) == "subscribed");
        Assert.Equal(sent.Where(m => m.Topic.StartsWith("a/", StringComparison.Ordinal)), frames.Where(f => Ev(f) == "msg").Select(Of));
        Assert.StartsWith("k:", frames[^1].GetProperty("id").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kafka_history_settings_are_validated_naming_the_key()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => BridgesHost.StartAsync(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bridges:History:Kafka:BootstrapServers"] = "127.0.0.1:9",
            ["Bridges:History:Kafka:Topics:0"] = "bad topic!",
        }).Build()));
        Assert.Contains("Bridges:History:Kafka:Topics: 'bad topic!'", e.Message, StringComparison.Ordinal);

        e = await Assert.ThrowsAsync<ArgumentException>(() => BridgesHost.StartAsync(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bridges:History:Kafka:Topics:0"] = "alpha",
        }).Build()));
        Assert.Contains("Bridges:History:Kafka:BootstrapServers is required", e.Message, StringComparison.Ordinal);

        e = await Assert.ThrowsAsync<ArgumentException>(() => BridgesHost.StartAsync(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bridges:History:Kafka:BootstrapServers"] = "127.0.0.1:9",
        }).Build()));
        Assert.Contains("Bridges:History:Kafka:Topics must name", e.Message, StringComparison.Ordinal);
    }
}
