using System.Buffers;
using System.Text;
using System.Text.Json;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>A clock that moves only when told: token-bucket math without waiting.</summary>
sealed class ManualTime : TimeProvider
{
    long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    public void Advance(TimeSpan by) => _ticks += by.Ticks;
}

public sealed class TokenBucketTests
{
    [Fact]
    public void Starts_with_one_token_then_refills_at_the_rate()
    {
        var time = new ManualTime();
        var bucket = new TokenBucket(10, 5, time);

        Assert.True(bucket.TryTake(out _));
        Assert.False(bucket.TryTake(out var wait));
        Assert.Equal(0.1, wait.TotalSeconds, 6);

        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.True(bucket.TryTake(out _));
        Assert.False(bucket.TryTake(out _));
    }

    [Fact]
    public void An_idle_bucket_fills_only_to_its_capacity()
    {
        var time = new ManualTime();
        var bucket = new TokenBucket(100, 5, time);
        time.Advance(TimeSpan.FromSeconds(60));

        var taken = 0;
        while (bucket.TryTake(out _)) taken++;

        Assert.Equal(5, taken);
    }

    [Fact]
    public void Over_a_long_run_takes_never_exceed_rate_times_time_plus_capacity()
    {
        var time = new ManualTime();
        var bucket = new TokenBucket(250, 25, time);
        var taken = 0;
        for (var step = 0; step < 10_000; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(1));
            while (bucket.TryTake(out _)) taken++;
        }

        // 10 s at 250/s, plus the first token.
        Assert.InRange(taken, 2_499, 2_501);
    }

    [Fact]
    public void The_wait_is_the_time_to_the_next_whole_token()
    {
        var time = new ManualTime();
        var bucket = new TokenBucket(4, 1, time);
        Assert.True(bucket.TryTake(out _));
        time.Advance(TimeSpan.FromMilliseconds(100));

        Assert.False(bucket.TryTake(out var wait));
        Assert.Equal(0.15, wait.TotalSeconds, 6);
    }
}

public sealed class ReconnectBackoffTests
{
    readonly ReconnectBackoff _backoff = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 2)]
    [InlineData(3, 8)]
    [InlineData(5, 30)]
    [InlineData(40, 30)]
    public void The_ceiling_doubles_per_attempt_up_to_the_maximum(int attempt, double ceilingSeconds) =>
        Assert.Equal(ceilingSeconds, _backoff.Ceiling(attempt, DisconnectKind.Failure).TotalSeconds, 6);

    [Fact]
    public void Jitter_stays_between_the_minimum_and_the_ceiling()
    {
        var random = new Random(7);
        for (var attempt = 0; attempt < 12; attempt++)
        {
            for (var i = 0; i < 200; i++)
            {
                var delay = _backoff.Delay(attempt, DisconnectKind.Failure, random.NextDouble());
                Assert.InRange(delay.TotalSeconds, 1, _backoff.Ceiling(attempt, DisconnectKind.Failure).TotalSeconds);
            }
        }

        Assert.Equal(1, _backoff.Delay(4, DisconnectKind.Failure, 0).TotalSeconds, 6);
        Assert.Equal(16, _backoff.Delay(4, DisconnectKind.Failure, 1).TotalSeconds, 6);
    }

    [Fact]
    public void Overload_backs_off_longer_and_a_redirect_not_at_all()
    {
        Assert.Equal(120, _backoff.Ceiling(10, DisconnectKind.Overloaded).TotalSeconds, 6);
        Assert.True(_backoff.Delay(0, DisconnectKind.Overloaded, 0) >= TimeSpan.FromSeconds(1));
        Assert.True(_backoff.Delay(3, DisconnectKind.Overloaded, 0) >= TimeSpan.FromSeconds(4));
        Assert.Equal(TimeSpan.Zero, _backoff.Delay(5, DisconnectKind.Redirected, 0.9));
    }

    [Theory]
    [InlineData(0x9C, DisconnectKind.Redirected)]
    [InlineData(0x9D, DisconnectKind.Redirected)]
    [InlineData(0x8B, DisconnectKind.ServerShuttingDown)]
    [InlineData(0x97, DisconnectKind.Overloaded)]
    [InlineData(0x89, DisconnectKind.Overloaded)]
    [InlineData(0x80, DisconnectKind.Failure)]
    public void Disconnect_reasons_map_to_a_policy(int code, DisconnectKind kind) => Assert.Equal(kind, ReconnectBackoff.Classify(code));
}

public sealed class DisconnectPacketReaderTests
{
    [Fact]
    public void Server_moved_with_a_loopback_reference_is_followed()
    {
        var reference = "127.0.0.1:1884"u8.ToArray();
        // DISCONNECT, reason 0x9D, properties: reason string "moving", server reference.
        var properties = new List<byte> { 0x1F, 0, 6 };
        properties.AddRange("moving"u8.ToArray());
        properties.AddRange([0x1C, 0, (byte)reference.Length]);
        properties.AddRange(reference);
        var body = new List<byte> { 0x9D, (byte)properties.Count };
        body.AddRange(properties);
        var packet = new List<byte> { 0xE0, (byte)body.Count };
        packet.AddRange(body);

        Assert.True(DisconnectPacketReader.TryRead(packet.ToArray(), out var code, out var server));
        Assert.Equal(0x9D, code);
        Assert.Equal("127.0.0.1:1884", server);
        Assert.Equal(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1884), DisconnectPacketReader.LoopbackTarget(server, 1883));
    }

    [Theory]
    [InlineData("10.0.0.5:1883")]
    [InlineData("broker.example.com")]
    [InlineData("")]
    public void A_reference_off_loopback_is_not_followed(string reference) => Assert.Null(DisconnectPacketReader.LoopbackTarget(reference, 1883));

    [Fact]
    public void A_bare_disconnect_reads_as_normal() =>
        Assert.True(DisconnectPacketReader.TryRead([0xE0, 0x00], out var code, out var server) && code == 0 && server is null);
}

public sealed class ShardPlanTests
{
    [Theory]
    [InlineData(1_000_000, 10)]
    [InlineData(20, 3)]
    [InlineData(7, 7)]
    [InlineData(5, 8)]
    public void Every_device_belongs_to_exactly_one_shard(int devices, int shards)
    {
        var seen = new int[devices];
        for (var i = 0; i < shards; i++)
        {
            var (first, count) = new ShardPlan(i, shards).Devices(devices);
            for (var d = first; d < first + count; d++) seen[d]++;
        }

        Assert.All(seen, s => Assert.Equal(1, s));
    }

    [Theory]
    [InlineData(100_000, 4, 5)]
    [InlineData(23, 3, 4)]
    public void Splitting_a_shard_over_processes_covers_exactly_that_shard(int devices, int shards, int processes)
    {
        for (var i = 0; i < shards; i++)
        {
            var shard = new ShardPlan(i, shards);
            var (first, count) = shard.Devices(devices);
            var covered = new List<int>();
            for (var j = 0; j < processes; j++)
            {
                var (f, c) = shard.Split(j, processes).Devices(devices);
                covered.AddRange(Enumerable.Range(f, c));
            }

            Assert.Equal(Enumerable.Range(first, count), covered);
        }
    }

    [Theory]
    [InlineData("3/10", true)]
    [InlineData("0/1", true)]
    [InlineData("10/10", false)]
    [InlineData("1/0", false)]
    [InlineData("-1/4", false)]
    [InlineData("x", false)]
    public void Shards_parse_as_index_slash_count(string text, bool valid) => Assert.Equal(valid, ShardPlan.TryParse(text, out _));

    [Fact]
    public void Child_processes_get_their_own_shard_source_block_and_report_file()
    {
        string[] args = ["--devices", "30000", "--processes", "3", "--shard", "1/2", "--json", "all.json", "--verify", "--source-base", "127.0.0.2", "--per-source", "5000"];
        Assert.True(FleetOptions.TryParse(args, out var options, out var error), error);

        // Shard 1/2 is 15,000 devices, 5,000 (+ 1 verifier) per child: two addresses of 5,000 each per child.
        var child = FleetProcessSplit.ChildArguments(options, args, 2, "c2.json");

        Assert.Equal(["--devices", "30000", "--verify", "--per-source", "5000", "--child", "--shard", "5/6", "--source-base", "127.0.0.6", "--json", "c2.json"], child);
        Assert.True(FleetOptions.TryParse(child, out var childOptions, out error), error);
        Assert.Equal((25_000, 5_000), childOptions.LocalDevices);
    }
}

public sealed class FleetOptionsTests
{
    [Fact]
    public void Fleet_options_are_parsed()
    {
        Assert.True(FleetOptions.TryParse(
            ["--devices", "20", "--client-id-pattern", "car-{0:D4}", "--connect-rate", "50", "--ramp", "2", "--interval", "0.5", "--jitter", "0.05",
             "--qos", "2", "--protocol", "5", "--session", "persistent", "--session-expiry", "60", "--ws", "ws://127.0.0.1:8080/mqtt",
             "--will-topic-pattern", "devices/{0}/status", "--messages-per-device", "3", "--verify", "--duration", "5"],
            out var o, out var error), error);

        Assert.Equal((20, "car-0007", 50.0, 2.0, 0.5, 2, true, true, 60u), (o.Devices, o.ClientId(7), o.ConnectRate, o.RampSeconds, o.IntervalSeconds, o.Qos, o.Mqtt5, o.PersistentSession, o.SessionExpirySeconds));
        Assert.Equal("devices/+/telemetry", o.VerifyFilter);
        Assert.Equal("ws://127.0.0.1:8080/mqtt", o.WebSocketUrl);
    }

    [Fact]
    public void More_connections_per_process_than_the_open_file_limit_allows_are_refused()
    {
        Assert.False(FleetOptions.TryParse(["--devices", "50000"], out _, out var error));
        Assert.Contains("--processes", error, StringComparison.Ordinal);
        Assert.Contains("19000", error, StringComparison.Ordinal);

        Assert.True(FleetOptions.TryParse(["--devices", "50000", "--processes", "3"], out _, out error), error);
        Assert.True(FleetOptions.TryParse(["--devices", "1000000", "--shard", "0/10", "--processes", "6"], out _, out error), error);
    }

    [Theory]
    [InlineData("--protocol", "4.0")]
    [InlineData("--qos", "3")]
    [InlineData("--session", "durable")]
    [InlineData("--shard", "4/4")]
    [InlineData("--ws", "http://x/mqtt")]
    [InlineData("--jitter", "5")]
    [InlineData("--duration", "0")]
    [InlineData("--client-id-pattern", "same")]
    [InlineData("--reconnect-min", "0")]
    [InlineData("--connect-rate", "fast")]
    public void A_bad_value_is_refused_with_an_error_naming_the_option(string option, string value)
    {
        Assert.False(FleetOptions.TryParse([option, value], out _, out var error));
        Assert.Contains(option, error, StringComparison.Ordinal);
    }
}

public sealed class TelemetryPayloadTests
{
    [Fact]
    public void The_default_payload_is_json_with_sequence_timestamp_and_readings()
    {
        var bytes = new TelemetryPayload(0, null).Build(42, "dev-000042", 7, 1_732_350_000_123.456, new Random(1));

        using var json = JsonDocument.Parse(bytes);
        var root = json.RootElement;
        Assert.Equal(42, root.GetProperty("dev").GetInt32());
        Assert.Equal(7, root.GetProperty("seq").GetInt64());
        Assert.Equal(1_732_350_000_123.456, root.GetProperty("ts").GetDouble(), 3);
        Assert.InRange(root.GetProperty("temp").GetDouble(), 15, 30);
        Assert.InRange(root.GetProperty("hum").GetDouble(), 30, 80);
        Assert.True(TelemetryPayload.TryRead(new ReadOnlySequence<byte>(bytes), out var dev, out var seq, out var ts));
        Assert.Equal((42, 7L), (dev, seq));
        Assert.Equal(1_732_350_000_123.456, ts, 3);
    }

    [Fact]
    public void Payload_size_pads_with_a_json_string()
    {
        var bytes = new TelemetryPayload(300, null).Build(1, "d", 1, 1, new Random(1));

        Assert.Equal(300, bytes.Length);
        using var json = JsonDocument.Parse(bytes);
        Assert.True(json.RootElement.GetProperty("pad").GetString()!.Length > 200);
    }

    [Fact]
    public void A_template_fills_its_placeholders()
    {
        var bytes = new TelemetryPayload(0, "{\"id\":\"{id}\",\"dev\":{dev},\"seq\":{seq},\"t\":{temp}}").Build(3, "dev-3", 9, 5, new Random(1));

        var text = Encoding.UTF8.GetString(bytes);
        Assert.StartsWith("{\"id\":\"dev-3\",\"dev\":3,\"seq\":9,\"t\":", text, StringComparison.Ordinal);
        Assert.True(TelemetryPayload.TryRead(new ReadOnlySequence<byte>(bytes), out var dev, out var seq, out _));
        Assert.Equal((3, 9L), (dev, seq));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"seq\":1}")]
    [InlineData("[1,2]")]
    public void Foreign_payloads_are_not_read(string text) =>
        Assert.False(TelemetryPayload.TryRead(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(text)), out _, out _, out _));
}

public sealed class FleetReportTests
{
    static FleetReport Part(int devices, long connected, long published, long lost, params long[] ackMicros)
    {
        var histogram = LatencyPercentiles.CreateHistogram();
        foreach (var us in ackMicros) LatencyPercentiles.Record(histogram, us);
        var empty = FleetHistogram.From(LatencyPercentiles.CreateHistogram());
        return new FleetReport("fleet", "127.0.0.1:1883", "tcp", "3.1.1", "0/1", 1, devices, 1, 10, connected + 1, connected, 1, 0, 0, 0,
            published, 0, 0, true, published - lost, lost, 0, LatencyPercentiles.From(histogram), LatencyPercentiles.From(histogram),
            LatencyPercentiles.From(histogram), FleetHistogram.From(histogram), FleetHistogram.From(histogram), empty,
            new Dictionary<string, int> { ["connect: timeout"] = 1 }, false);
    }

    [Fact]
    public void Children_reports_sum_and_their_histograms_merge()
    {
        var a = Part(10, 10, 100, 0, 1000, 1000, 1000);
        var b = Part(10, 9, 50, 2, 9000);

        var merged = FleetReport.Merge([a, b], 2, "0/1");

        Assert.Equal((20, 19L, 150L, 2L, 2), (merged.Devices, merged.Connected, merged.Published, merged.Lost, merged.Processes));
        Assert.Equal(95, merged.ConnectSuccessPercent);
        Assert.Equal(2, merged.Failures["connect: timeout"]);
        Assert.Equal(4, merged.PublishAckLatency.Count);
        Assert.Equal(1.0, merged.PublishAckLatency.P50Ms, 2);
        Assert.Equal(9.0, merged.PublishAckLatency.MaxMs, 1);
        Assert.False(merged.Clean);
    }

    [Fact]
    public void The_json_report_round_trips_for_the_parent()
    {
        var report = Part(5, 5, 20, 0, 500, 700);

        var json = report.ToJson();
        var back = FleetReport.FromJson(json)!;

        Assert.Contains("\"connect_success_percent\"", json, StringComparison.Ordinal);
        Assert.Equal(report.Published, back.Published);
        Assert.Equal(2, back.PublishAckHistogram.ToHistogram().TotalCount);
        Assert.True(back.Clean);
    }
}
