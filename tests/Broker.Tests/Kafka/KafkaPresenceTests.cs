using System.Text;
using System.Text.Json;
using IotRealtime.Broker.Kafka;
using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Broker.Tests.Operations;
using Microsoft.Extensions.DependencyInjection;
using static IotRealtime.Broker.Tests.Kafka.KafkaTestKit;

namespace IotRealtime.Broker.Tests.Kafka;

/// <summary>Presence events reach their own Kafka topic as JSON records keyed by client id.</summary>
public sealed class KafkaPresenceTests
{
    [Fact]
    public async Task Connect_and_disconnect_are_produced_to_the_presence_topic_keyed_by_client_id()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("mqtt");
        kafka.CreateTopic("presence");
        await using var broker = await StartBrokerAsync(kafka, new() { ["Kafka:PresenceTopic"] = "presence" });

        var device = await MqttTestClient.ConnectAsync(broker, clientId: "presence-dev");
        await device.DisposeAsync();

        var records = await ConsumeAsync(kafka, "presence", 2);
        Assert.All(records, r => Assert.Equal("presence-dev", Encoding.UTF8.GetString(r.Message.Key!)));
        Assert.Equal(["connected", "disconnected"], records.Select(r => Header(r, KafkaPresenceForwarder.EventHeader)));
        var connected = JsonDocument.Parse(records[0].Message.Value).RootElement;
        Assert.Equal("presence-dev", connected.GetProperty("clientId").GetString());
        Assert.Equal("connected", connected.GetProperty("event").GetString());
        Assert.True(connected.GetProperty("online").GetBoolean());
        Assert.Equal("5.0", connected.GetProperty("protocol").GetString());
        var disconnected = JsonDocument.Parse(records[1].Message.Value).RootElement;
        Assert.Equal("disconnected", disconnected.GetProperty("event").GetString());
        Assert.False(disconnected.GetProperty("online").GetBoolean());
        Assert.True(disconnected.GetProperty("clean").GetBoolean());

        var presence = broker.Host.Services.GetRequiredService<KafkaPresenceForwarder>();
        await Wait.UntilAsync(() => presence.Produced == 2, Timeouts.Default, "two presence events confirmed");
        using var http = OperationsHttp.Create(broker);
        Assert.Contains("iotrealtime_kafka_presence_produced_total 2\n", await http.GetStringAsync("metrics"));
    }

    [Fact]
    public async Task Without_a_presence_topic_no_presence_forwarder_runs()
    {
        await using var kafka = KafkaMockCluster.Start();
        kafka.CreateTopic("mqtt");
        await using var broker = await StartBrokerAsync(kafka, new());
        Assert.Null(broker.Host.Services.GetService<KafkaPresenceForwarder>());
    }
}
