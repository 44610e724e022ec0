using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Host.Configuration;
using IotRealtime.Broker.Kafka;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Kafka.KafkaTestKit;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>Messages published by real MQTT clients reach Kafka (librdkafka's mock cluster) through the forwarder.</summary>
public sealed class KafkaForwardingTests
{
    [Fact]
    public async Task Published_message_arrives_in_Kafka_with_key_value_and_headers()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("telemetry");
        await using var broker = await StartBrokerAsync(kafka, new()
        {
            ["Kafka:Rules:0:Filter"] = "devices/+/telemetry",
            ["Kafka:Rules:0:Topic"] = "telemetry",
            ["Kafka:Rules:0:Mode"] = "Durable",
        });
        await using var device = await MqttTestClient.ConnectAsync(broker, clientId: "dev-1");

        var result = await PublishAsync(device, "devices/dev-1/telemetry", "{\"t\":21.5}", configure: b => b
            .WithContentType("application/json")
            .WithUserProperty("site", Encoding.UTF8.GetBytes("berlin").AsMemory()));
        Assert.Equal(MqttClientPublishReasonCode.Success, result.ReasonCode);

        var record = Assert.Single(await ConsumeAsync(kafka, "telemetry", 1));
        Assert.Equal("dev-1", Encoding.UTF8.GetString(record.Message.Key!));
        Assert.Equal("{\"t\":21.5}", Encoding.UTF8.GetString(record.Message.Value));
        Assert.Equal("devices/dev-1/telemetry", Header(record, "mqtt.topic"));
        Assert.Equal("1", Header(record, "mqtt.qos"));
        Assert.Equal("false", Header(record, "mqtt.retain"));
        Assert.Equal("dev-1", Header(record, "mqtt.client_id"));
        Assert.Equal("application/json", Header(record, "mqtt.content_type"));
        Assert.Equal("berlin", Header(record, "site"));
        Assert.Equal(TimestampType.CreateTime, record.Message.Timestamp.Type);
    }

    [Fact]
    public async Task Rules_pick_the_Kafka_topic_and_unmatched_topics_are_not_forwarded()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("alpha");
        kafka.CreateTopic("beta");
        await using var broker = await StartBrokerAsync(kafka, new()
        {
            ["Kafka:DefaultTopic"] = "",
            ["Kafka:Rules:0:Filter"] = "a/#",
            ["Kafka:Rules:0:Topic"] = "alpha",
            ["Kafka:Rules:0:Mode"] = "Durable",
            ["Kafka:Rules:0:Key"] = "Topic",
            ["Kafka:Rules:1:Filter"] = "+/x",
            ["Kafka:Rules:1:Topic"] = "beta",
            ["Kafka:Rules:1:Mode"] = "Durable",
        });
        await using var device = await MqttTestClient.ConnectAsync(broker, clientId: "dev-2");

        // "a/x" matches both rules: the first one wins.
        foreach (var topic in new[] { "a/1", "b/x", "c/1", "a/x" })
        {
            Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, topic, topic)).ReasonCode);
        }

        var alpha = await ConsumeAsync(kafka, "alpha", 2);
        Assert.Equal(["a/1", "a/x"], alpha.Select(r => Encoding.UTF8.GetString(r.Message.Value)));
        Assert.Equal(["a/1", "a/x"], alpha.Select(r => Encoding.UTF8.GetString(r.Message.Key!)));
        var beta = Assert.Single(await ConsumeAsync(kafka, "beta", 1));
        Assert.Equal("b/x", Encoding.UTF8.GetString(beta.Message.Value));
        Assert.Equal("dev-2", Encoding.UTF8.GetString(beta.Message.Key!));
        // Every durable publish was confirmed before its PUBACK, so the count is exact: c/1 went nowhere.
        Assert.Equal(3, Forwarder(broker).Forwarded);
    }

    [Fact]
    public async Task Durable_publish_is_refused_while_Kafka_is_down_and_succeeds_once_it_is_back()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("durable");
        await using var broker = await StartBrokerAsync(kafka, new()
        {
            ["Kafka:DefaultTopic"] = "durable",
            ["Kafka:DefaultMode"] = "Durable",
            ["Kafka:DurableTimeoutMs"] = "1000",
        });
        await using var device = await MqttTestClient.ConnectAsync(broker, clientId: "dev-3");
        var forwarder = Forwarder(broker);

        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "d/1", "first")).ReasonCode);
        // The PUBACK came only after Kafka confirmed the record.
        Assert.Equal(1, forwarder.Forwarded);

        kafka.SetBrokersDown();
        var refused = await PublishAsync(device, "d/1", "while-down");
        Assert.NotEqual(MqttClientPublishReasonCode.Success, refused.ReasonCode);
        Assert.True((int)refused.ReasonCode >= 0x80, $"expected an error reason code, got {refused.ReasonCode}");
        Assert.Equal(1, forwarder.DurableTimeouts);

        kafka.SetBrokersUp();
        // As a device would: retry until the producer has reconnected and Kafka confirms.
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while ((await PublishAsync(device, "d/1", "after")).ReasonCode != MqttClientPublishReasonCode.Success)
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException("Durable publishes still refused after Kafka came back.");
        }

        // The refused record may still reach Kafka (at least once, never lost), ahead of "after": the producer is idempotent.
        var values = (await ConsumeAsync(kafka, "durable", (int)forwarder.Forwarded)).Select(r => Encoding.UTF8.GetString(r.Message.Value)).ToList();
        Assert.Equal("first", values[0]);
        Assert.Equal("after", values[^1]);
    }

    [Fact]
    public async Task Async_publishes_are_acknowledged_while_Kafka_is_down_and_delivered_when_it_returns()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("async");
        await using var broker = await StartBrokerAsync(kafka, new()
        {
            ["Kafka:DefaultTopic"] = "async",
            ["Kafka:DefaultMode"] = "Async",
        });
        await using var device = await MqttTestClient.ConnectAsync(broker, clientId: "dev-4");
        var forwarder = Forwarder(broker);

        kafka.SetBrokersDown();
        foreach (var payload in new[] { "m1", "m2", "m3" })
        {
            Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "s/1", payload)).ReasonCode);
        }
        Assert.Equal(0, forwarder.Forwarded);
        Assert.Equal(3, forwarder.Buffered);

        kafka.SetBrokersUp();
        var values = (await ConsumeAsync(kafka, "async", 3)).Select(r => Encoding.UTF8.GetString(r.Message.Value));
        Assert.Equal(["m1", "m2", "m3"], values);
        await Wait.UntilAsync(() => forwarder.Buffered == 0 && forwarder.Forwarded == 3, Timeouts.Default, "async buffer to drain");
    }

    [Fact]
    public async Task Async_buffer_overflow_refuses_or_drops_by_policy()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("bounded");
        var settings = new Dictionary<string, string?>
        {
            ["Kafka:DefaultTopic"] = "bounded",
            ["Kafka:AsyncBufferMessages"] = "2",
            ["Kafka:AsyncOverflow"] = "Refuse",
            ["Kafka:ShutdownFlushMs"] = "0",
        };
        await using var broker = await StartBrokerAsync(kafka, settings);
        await using var device = await MqttTestClient.ConnectAsync(broker, clientId: "dev-5");
        var forwarder = Forwarder(broker);

        kafka.SetBrokersDown();
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "s/1", "1")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await PublishAsync(device, "s/1", "2")).ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.QuotaExceeded, (await PublishAsync(device, "s/1", "3")).ReasonCode);
        // QoS 0 never waits and cannot be refused: it is dropped and counted.
        await PublishAsync(device, "s/1", "4", MqttQualityOfServiceLevel.AtMostOnce);
        await Wait.UntilAsync(() => forwarder.Dropped == 1, Timeouts.Default, "the QoS 0 overflow to be counted as dropped");
        Assert.Equal(2, forwarder.Buffered);
    }

    [Fact]
    public async Task Bad_Kafka_settings_are_reported_by_key()
    {
        var error = await Assert.ThrowsAsync<BrokerConfigurationException>(() => TestBroker.StartAsync(new Dictionary<string, string?>
        {
            ["Kafka:BootstrapServers"] = "127.0.0.1:1",
            ["Kafka:BootstrapSrvers"] = "typo",
            ["Kafka:Rules:0:Filter"] = "a/#/b",
            ["Kafka:Rules:0:Topic"] = "bad topic",
            ["Kafka:Rules:1:Topic"] = "ok",
            ["Kafka:Rules:1:Mdoe"] = "Durable",
            ["Kafka:Rules:2:Topic"] = "ok",
            ["Kafka:Rules:2:Mode"] = "Sync",
            ["Kafka:AsyncOverflow"] = "Block",
            ["Kafka:DurableTimeoutMs"] = "0",
        }));
        Assert.Contains("Kafka:BootstrapSrvers", error.Message);
        Assert.Contains("Kafka:Rules:0:Filter", error.Message);
        Assert.Contains("Kafka:Rules:0:Topic", error.Message);
        Assert.Contains("Kafka:Rules:1:Mdoe", error.Message);
        Assert.Contains("Kafka:Rules:2:Mode: 'Sync'", error.Message);
        Assert.Contains("Kafka:AsyncOverflow", error.Message);
        Assert.Contains("Kafka:DurableTimeoutMs", error.Message);
    }
}
