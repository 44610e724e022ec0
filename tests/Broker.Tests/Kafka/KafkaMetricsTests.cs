using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Broker.Tests.Operations;
using MQTTnet;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Kafka.KafkaTestKit;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>The forwarder's families on GET /metrics, per rule, against a real broker and mock Kafka cluster.</summary>
public sealed class KafkaMetricsTests
{
    [Fact]
    public async Task Metrics_count_forwarded_timeouts_buffered_and_dropped_per_rule_with_a_latency_histogram()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("alpha");
        kafka.CreateTopic("rest");
        await using var broker = await StartBrokerAsync(kafka, new()
        {
            ["Kafka:Rules:0:Filter"] = "a/#",
            ["Kafka:Rules:0:Topic"] = "alpha",
            ["Kafka:Rules:0:Mode"] = "Durable",
            ["Kafka:DefaultTopic"] = "rest",
            ["Kafka:AsyncBufferMessages"] = "1",
            ["Kafka:AsyncOverflow"] = "Drop",
            ["Kafka:DurableTimeoutMs"] = "500",
            ["Kafka:ShutdownFlushMs"] = "0",
        });
        await using var device = await MqttTestClient.ConnectAsync(broker, clientId: "metrics-dev");
        var forwarder = Forwarder(broker);
        using var http = OperationsHttp.Create(broker);

        for (var i = 0; i < 3; i++) Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "a/" + i, "x")).ReasonCode);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "b/" + i, "y")).ReasonCode);
            // one at a time: the async buffer holds a single record
            var expected = 4 + i;
            await Wait.UntilAsync(() => forwarder.Forwarded == expected, Timeouts.Default, $"{expected} records confirmed");
        }

        var text = await http.GetStringAsync("metrics");
        Assert.Contains("# TYPE iotrealtime_kafka_forwarded_total counter\n", text);
        Assert.Contains("iotrealtime_kafka_forwarded_total{rule=\"a/#\",topic=\"alpha\"} 3\n", text);
        Assert.Contains("iotrealtime_kafka_forwarded_total{rule=\"#\",topic=\"rest\"} 2\n", text);
        Assert.Contains("iotrealtime_kafka_failed_total{rule=\"a/#\",topic=\"alpha\"} 0\n", text);
        Assert.Contains("iotrealtime_kafka_buffered{rule=\"#\",topic=\"rest\"} 0\n", text);
        Assert.Contains("# TYPE iotrealtime_kafka_produce_latency_seconds histogram\n", text);
        Assert.Contains("iotrealtime_kafka_produce_latency_seconds_count 5\n", text);
        Assert.Contains("iotrealtime_kafka_produce_latency_seconds_bucket{le=\"+Inf\"} 5\n", text);

        kafka.SetBrokersDown();
        Assert.NotEqual(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "a/down", "z")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "b/held", "held")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "b/dropped", "dropped")).ReasonCode);

        text = await http.GetStringAsync("metrics");
        Assert.Contains("iotrealtime_kafka_durable_timeouts_total{rule=\"a/#\",topic=\"alpha\"} 1\n", text);
        Assert.Contains("iotrealtime_kafka_durable_timeouts_total{rule=\"#\",topic=\"rest\"} 0\n", text);
        Assert.Contains("iotrealtime_kafka_buffered{rule=\"#\",topic=\"rest\"} 1\n", text);
        Assert.Contains("iotrealtime_kafka_dropped_total{rule=\"#\",topic=\"rest\"} 1\n", text);
        Assert.Contains("iotrealtime_kafka_dropped_total{rule=\"a/#\",topic=\"alpha\"} 0\n", text);
        Assert.Contains("iotrealtime_kafka_buffer_capacity 1\n", text);
    }

    [Fact]
    public async Task Broker_without_Kafka_exports_no_Kafka_families()
    {
        await using var broker = await TestBroker.StartAsync();
        using var http = OperationsHttp.Create(broker);
        var text = await http.GetStringAsync("metrics");
        Assert.Contains("iotrealtime_up 1\n", text);
        Assert.DoesNotContain("iotrealtime_kafka_", text);
    }
}
