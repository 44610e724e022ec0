using System.Net;
using System.Text.RegularExpressions;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Operations;

public sealed partial class MetricsEndpointTests
{
    [GeneratedRegex("""^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|[+-]Inf|NaN)$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$")]
    private static partial Regex CommentLine();

    [Fact]
    public async Task Metrics_count_published_messages_by_qos_in_valid_prometheus_text()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var client = await MqttTestClient.ConnectAsync(broker);
        for (var i = 0; i < 7; i++) await client.PublishAsync("metrics/test", "m" + i, MqttQualityOfServiceLevel.AtLeastOnce);
        for (var i = 0; i < 3; i++) await client.PublishAsync("metrics/test", "m" + i, MqttQualityOfServiceLevel.ExactlyOnce);
        broker.Host.Broker.Metrics.RecordStoreWrite(TimeSpan.FromMilliseconds(3));
        using var http = OperationsHttp.Create(broker);

        using var response = await http.GetAsync("metrics");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain; version=0.0.4", response.Content.Headers.ContentType!.ToString());
        var lines = text.Split('\n');
        Assert.Equal("", lines[^1]); // the format ends every line, the last one included, with \n
        var typed = new HashSet<string>();
        foreach (var line in lines[..^1])
        {
            if (line.StartsWith('#'))
            {
                Assert.Matches(CommentLine(), line);
                if (line.StartsWith("# TYPE ")) Assert.True(typed.Add(line.Split(' ')[2]), "TYPE given twice: " + line);
                continue;
            }
            Assert.Matches(SampleLine(), line);
            var name = line.Split('{', ' ')[0];
            Assert.True(typed.Contains(name) || typed.Contains(Regex.Replace(name, "_(bucket|sum|count)$", "")), "sample before its TYPE: " + line);
        }
        Assert.Contains("iotrealtime_messages_received_total{qos=\"1\"} 7\n", text);
        Assert.Contains("iotrealtime_messages_received_total{qos=\"2\"} 3\n", text);
        Assert.Contains("iotrealtime_messages_received_total{qos=\"0\"} 0\n", text);
        Assert.Contains("iotrealtime_connections 1\n", text);
        Assert.Contains("iotrealtime_connects_total 1\n", text);
        Assert.Contains("iotrealtime_messages_dropped_total{reason=\"queue_full\"} 0\n", text);
        Assert.Contains("# TYPE iotrealtime_accept_latency_seconds histogram\n", text);
        Assert.Contains("iotrealtime_store_write_latency_seconds_bucket{le=\"0.0025\"} 0\n", text);
        Assert.Contains("iotrealtime_store_write_latency_seconds_bucket{le=\"0.005\"} 1\n", text);
        Assert.Contains("iotrealtime_store_write_latency_seconds_bucket{le=\"+Inf\"} 1\n", text);
        Assert.Contains("iotrealtime_store_write_latency_seconds_count 1\n", text);
        Assert.Contains("iotrealtime_queued_bytes 0\n", text);
        Assert.Contains("iotrealtime_write_stall_disconnects_total 0\n", text);
        // what the runtime does to the broker: a stall shows up as thread-pool lag or GC pause
        Assert.Contains("# TYPE iotrealtime_threadpool_lag_max_seconds gauge\n", text);
        Assert.Contains("# TYPE iotrealtime_gc_pause_seconds_total counter\n", text);
        Assert.Contains("iotrealtime_gc_collections_total{generation=\"2\"} ", text);
        Assert.Matches(@"iotrealtime_process_resident_bytes [1-9][0-9]*\n", text);
    }

    [Fact]
    public async Task Healthz_and_readyz_answer_ok_on_a_running_broker()
    {
        await using var broker = await TestBroker.StartAsync();
        using var http = OperationsHttp.Create(broker);

        using var health = await http.GetAsync("healthz");
        using var ready = await http.GetAsync("readyz");

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ready", await ready.Content.ReadAsStringAsync());
    }
}
