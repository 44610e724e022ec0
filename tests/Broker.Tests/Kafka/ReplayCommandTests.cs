using System.Text;
using System.Text.Json;
using IotRealtime.Broker.Host.Cli;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Kafka.KafkaReplayerTests;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary><c>iotrealtime-broker replay</c> against the mock cluster: NDJSON, rule-mapped filters, republishing, errors.</summary>
public sealed class ReplayCommandTests : IDisposable
{
    static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-replay-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static async Task<(int Code, List<JsonElement> Lines, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var timeout = new CancellationTokenSource(Timeouts.Default);
        var code = await ReplayCommand.RunAsync(args, output, error, timeout.Token);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        return (code, lines, error.ToString());
    }

    static async Task<KafkaMockCluster> ClusterWithRecordsAsync()
    {
        var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("cli");
        await ProduceAsync(kafka, "cli", Enumerable.Range(0, 6).Select(i => Message(i % 2 == 0 ? "even/" + i : "odd/" + i, "m" + i, T0.AddSeconds(i))));
        return kafka;
    }

    [Fact]
    public async Task Replay_writes_NDJSON_lines_from_a_position_up_to_a_limit()
    {
        await using var kafka = await ClusterWithRecordsAsync();
        await ProduceAsync(kafka, "cli", [new() { Topic = "bin/x", Payload = new byte[] { 0xff, 0x00, 0x80 }, QoS = MqttQualityOfServiceLevel.AtMostOnce, Retain = true, ReceivedAt = T0.AddSeconds(10) }]);

        var (code, lines, error) = await RunAsync("--bootstrap", kafka.BootstrapServers, "--topic", "cli", "--from", "cli/0/2", "--limit", "3");
        Assert.True(code == 0, error);
        Assert.Equal(["cli/0/2", "cli/0/3", "cli/0/4"], lines.Select(l => l.GetProperty("position").GetString()));
        Assert.Equal(["even/2", "odd/3", "even/4"], lines.Select(l => l.GetProperty("topic").GetString()));
        Assert.Equal("m2", lines[0].GetProperty("payload").GetString());
        Assert.Equal("utf8", lines[0].GetProperty("enc").GetString());
        Assert.Equal("2026-03-01T12:00:02.000Z", lines[0].GetProperty("ts").GetString());
        Assert.Equal(1, lines[0].GetProperty("qos").GetInt32());
        Assert.Equal("dev", lines[0].GetProperty("clientId").GetString());

        // binary payloads come base64-encoded, and a time range bounds the replay
        (code, lines, error) = await RunAsync("--bootstrap", kafka.BootstrapServers, "--topic=cli", "--from=2026-03-01T12:00:05Z", "--to", "end");
        Assert.True(code == 0, error);
        Assert.Equal(["m5", Convert.ToBase64String(new byte[] { 0xff, 0x00, 0x80 })], lines.Select(l => l.GetProperty("payload").GetString()));
        Assert.Equal("base64", lines[1].GetProperty("enc").GetString());
        Assert.True(lines[1].GetProperty("retain").GetBoolean());
        Assert.Equal(JsonValueKind.Null, lines[1].GetProperty("clientId").ValueKind);

        (code, lines, _) = await RunAsync("--bootstrap", kafka.BootstrapServers, "--topic", "cli", "--after", "cli/0/4", "--to", "2026-03-01T12:00:07Z");
        Assert.Equal(0, code);
        Assert.Equal(["cli/0/5"], lines.Select(l => l.GetProperty("position").GetString()));
    }

    [Fact]
    public async Task A_filter_reads_the_Kafka_topics_its_rules_name_in_a_config_file()
    {
        await using var kafka = await ClusterWithRecordsAsync();
        var config = Path.Combine(_dir, "broker.json");
        await File.WriteAllTextAsync(config, $$"""
            { "Kafka": { "BootstrapServers": "{{kafka.BootstrapServers}}", "DefaultTopic": "", "Rules": [ { "Filter": "+/#", "Topic": "cli" } ] } }
            """);

        var (code, lines, error) = await RunAsync("--filter", "even/+", "--config", config);

        Assert.True(code == 0, error);
        Assert.Equal(["even/0", "even/2", "even/4"], lines.Select(l => l.GetProperty("topic").GetString()));
    }

    [Fact]
    public async Task Into_republishes_under_a_prefix_into_a_running_broker()
    {
        await using var kafka = await ClusterWithRecordsAsync();
        await using var target = await TestBroker.StartAsync();
        await using var subscriber = await MqttTestClient.ConnectAsync(target);
        await subscriber.SubscribeAsync("again/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var output = new StringWriter();
        using var error = new StringWriter();

        var code = await ReplayCommand.RunAsync(["--bootstrap", kafka.BootstrapServers, "--topic", "cli", "--into", $"mqtt://127.0.0.1:{target.MqttPort}", "--prefix", "again/", "--rate", "500"], output, error);

        Assert.True(code == 0, error.ToString());
        Assert.Contains("Replayed 6 messages", output.ToString());
        await Wait.UntilAsync(() => subscriber.Received.Count == 6, Timeouts.Default, "six republished messages");
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (i % 2 == 0 ? "again/even/" : "again/odd/") + i), subscriber.Received.Select(m => m.Topic));
        Assert.Equal(Enumerable.Range(0, 6).Select(i => "m" + i), subscriber.Received.Select(m => m.Payload));
        Assert.All(subscriber.Received, m => Assert.False(m.Retain));
    }

    [Theory]
    [InlineData("--topic cli", "--bootstrap")]
    [InlineData("--bootstrap B", "--topic KAFKA_TOPIC or --filter")]
    [InlineData("--bootstrap B --topic cli --from yesterday", "'yesterday' is not a replay start")]
    [InlineData("--bootstrap B --topic cli --from cli/x/1", "topic/partition/offset")]
    [InlineData("--bootstrap B --topic cli --limit 0", "--limit '0'")]
    [InlineData("--bootstrap B --topic cli --to tomorrow", "--to 'tomorrow'")]
    [InlineData("--bootstrap B --topic cli --format csv", "--format 'csv'")]
    [InlineData("--bootstrap B --topic cli --into http://x:1", "--into 'http://x:1'")]
    [InlineData("--bootstrap B --topic cli --rate 5", "only with --into")]
    [InlineData("--bootstrap B --topic cli --bogus 1", "unknown argument '--bogus'")]
    [InlineData("--bootstrap B --topic bad/topic", "not a valid Kafka topic")]
    [InlineData("--bootstrap B --filter a/#/b", "not a valid MQTT topic filter")]
    [InlineData("--bootstrap B --topic cli --limit", "--limit needs a value")]
    [InlineData("--bootstrap B --topic cli --from 1 --after cli/0/1", "not both")]
    public async Task Bad_arguments_exit_2_with_a_message_naming_them(string args, string expected)
    {
        var (code, lines, error) = await RunAsync(args.Split(' '));
        Assert.Equal(2, code);
        Assert.Empty(lines);
        Assert.Contains(expected, error);
    }

    [Fact]
    public async Task A_missing_topic_exits_2_and_help_exits_0()
    {
        await using var kafka = KafkaMockCluster.Start();
        var (code, _, error) = await RunAsync("--bootstrap", kafka.BootstrapServers, "--topic", "nothing-here");
        Assert.Equal(2, code);
        Assert.Contains("'nothing-here' does not exist", error);

        using var output = new StringWriter();
        Assert.Equal(0, await ReplayCommand.RunAsync(["--help"], output, TextWriter.Null));
        Assert.Contains("Usage: iotrealtime-broker replay", output.ToString());
    }

    [Fact]
    public async Task The_broker_executable_dispatches_replay()
    {
        await using var kafka = await ClusterWithRecordsAsync();
        await using var process = ExternalProcess.Start(Path.Combine(AppContext.BaseDirectory, "iotrealtime-broker"),
            "replay", "--bootstrap", kafka.BootstrapServers, "--topic", "cli", "--limit", "2");
        Assert.Equal(0, await process.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(["cli/0/0", "cli/0/1"], process.Lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("position").GetString()));
    }
}
