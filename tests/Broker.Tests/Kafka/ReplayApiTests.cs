using System.Net;
using System.Text.Json;
using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Broker.Tests.Operations;
using static IotRealtime.Broker.Tests.Kafka.KafkaReplayerTests;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>GET /api/replay on a broker host that forwards to the mock cluster: NDJSON, SSE, resume with Last-Event-ID, errors.</summary>
public sealed class ReplayApiTests
{
    static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    static async Task<(KafkaMockCluster Kafka, TestBroker Broker)> StartAsync(Dictionary<string, string?>? settings = null)
    {
        var kafka = KafkaMockCluster.Start();
        settings ??= [];
        settings["Kafka:Rules:0:Filter"] = "site/#";
        settings["Kafka:Rules:0:Topic"] = "api";
        settings["Kafka:DefaultTopic"] = "";
        try
        {
            kafka.CreateTopic("api", partitions: 2);
            // eight devices keyed by client id spread over both partitions
            await ProduceAsync(kafka, "api", Enumerable.Range(0, 16).Select(i => Message($"site/{i % 2}/t", "m" + i, T0.AddSeconds(i), "dev-" + (i % 8))));
            return (kafka, await KafkaTestKit.StartBrokerAsync(kafka, settings));
        }
        catch
        {
            await kafka.DisposeAsync();
            throw;
        }
    }

    /// <summary>SSE events as (id, event, data) from a complete response body.</summary>
    static List<(string? Id, string? Event, string Data)> ParseSse(string body)
    {
        var events = new List<(string?, string?, string)>();
        foreach (var block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string? id = null, name = null, data = "";
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("id: ")) id = line[4..];
                else if (line.StartsWith("event: ")) name = line[7..];
                else if (line.StartsWith("data: ")) data = line[6..];
            }
            events.Add((id, name, data));
        }
        return events;
    }

    [Fact]
    public async Task NDJSON_replay_of_an_MQTT_filter_returns_only_matching_records()
    {
        var (kafka, broker) = await StartAsync();
        await using var _ = kafka;
        await using var __ = broker;
        using var http = OperationsHttp.Create(broker);

        using var response = await http.GetAsync("api/replay?filter=site/1/%2B&format=ndjson");
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("application/x-ndjson", response.Content.Headers.ContentType!.ToString());
        var lines = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(8, lines.Count);
        Assert.All(lines, l => Assert.Equal("site/1/t", l.GetProperty("topic").GetString()));
        Assert.Equal(Enumerable.Range(0, 8).Select(i => "m" + (2 * i + 1)).Order(), lines.Select(l => l.GetProperty("payload").GetString()).Order());
    }

    [Fact]
    public async Task SSE_resumes_from_Last_Event_ID_with_no_gap_and_no_duplicate()
    {
        var (kafka, broker) = await StartAsync();
        await using var _ = kafka;
        await using var __ = broker;
        using var http = OperationsHttp.Create(broker);

        var first = ParseSse(await http.GetStringAsync("api/replay?topic=api&format=sse&limit=5"));
        var records = first.Where(e => e.Event is null).ToList();
        Assert.Equal(5, records.Count);
        var end = Assert.Single(first, e => e.Event == "end");
        Assert.Equal(records[^1].Id, end.Id);
        // the id is a cursor over both partitions; it always names the record just sent
        foreach (var e in records)
        {
            var position = JsonDocument.Parse(e.Data).RootElement.GetProperty("position").GetString()!;
            Assert.Contains(position, e.Id!.Split(','));
        }

        using var resume = new HttpRequestMessage(HttpMethod.Get, "api/replay?topic=api&format=sse");
        resume.Headers.Add("Last-Event-ID", records[^1].Id);
        using var response = await http.SendAsync(resume);
        Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType!.ToString());
        var rest = ParseSse(await response.Content.ReadAsStringAsync()).Where(e => e.Event is null).ToList();

        var payloads = records.Concat(rest).Select(e => JsonDocument.Parse(e.Data).RootElement.GetProperty("payload").GetString()).ToList();
        Assert.Equal(16, payloads.Count);
        Assert.Equal(Enumerable.Range(0, 16).Select(i => "m" + i).Order(), payloads.Order());
    }

    [Fact]
    public async Task Time_range_and_limit_bound_the_replay()
    {
        var (kafka, broker) = await StartAsync();
        await using var _ = kafka;
        await using var __ = broker;
        using var http = OperationsHttp.Create(broker);

        var body = await http.GetStringAsync("api/replay?topic=api&from=2026-03-01T12:00:10Z&to=2026-03-01T12:00:13Z");
        var payloads = body.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("payload").GetString()).Order();
        Assert.Equal(["m10", "m11", "m12", "m13"], payloads);
    }

    [Theory]
    [InlineData("api/replay", HttpStatusCode.BadRequest, "give topic=")]
    [InlineData("api/replay?topic=api&from=soon", HttpStatusCode.BadRequest, "'soon' is not a replay start")]
    [InlineData("api/replay?topic=api&limit=0", HttpStatusCode.BadRequest, "limit '0'")]
    [InlineData("api/replay?topic=api&format=xml", HttpStatusCode.BadRequest, "format must be")]
    [InlineData("api/replay?filter=a/%23/b", HttpStatusCode.BadRequest, "not a valid MQTT topic filter")]
    [InlineData("api/replay?filter=other/%23", HttpStatusCode.BadRequest, "no forwarding rule")]
    [InlineData("api/replay?topic=absent", HttpStatusCode.NotFound, "does not exist")]
    public async Task Bad_requests_are_answered_with_the_reason(string path, HttpStatusCode status, string reason)
    {
        var (kafka, broker) = await StartAsync();
        await using var _ = kafka;
        await using var __ = broker;
        using var http = OperationsHttp.Create(broker);

        using var response = await http.GetAsync(path);

        Assert.Equal(status, response.StatusCode);
        Assert.Contains(reason, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Replay_follows_the_admin_token_and_needs_Kafka()
    {
        var (kafka, broker) = await StartAsync(new() { ["Admin:Token"] = "replay-admin-token-0123" });
        await using var _ = kafka;
        await using var __ = broker;
        using (var anonymous = OperationsHttp.Create(broker))
        {
            using var denied = await anonymous.GetAsync("api/replay?topic=api");
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        }
        using (var admin = OperationsHttp.Create(broker, "replay-admin-token-0123"))
        {
            using var allowed = await admin.GetAsync("api/replay?topic=api&limit=1");
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }

        await using var plain = await TestBroker.StartAsync();
        using var http = OperationsHttp.Create(plain);
        using var response = await http.GetAsync("api/replay?topic=api");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("Kafka:BootstrapServers", await response.Content.ReadAsStringAsync());
    }
}
