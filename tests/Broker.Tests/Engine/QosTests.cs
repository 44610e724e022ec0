using System.Buffers;
using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT 5 §4.3 / 3.1.1 §4.3: quality of service levels and protocol flows.</summary>
public sealed class QosTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    static MqttPublishPacket Publish(string topic, string payload, MqttQualityOfServiceLevel qos, ushort id = 0, bool dup = false, bool retain = false) => new()
    {
        Topic = topic,
        PayloadSegment = Encoding.UTF8.GetBytes(payload),
        QualityOfServiceLevel = qos,
        PacketIdentifier = id,
        Dup = dup,
        Retain = retain,
    };

    static MqttSubscribePacket Subscribe(ushort id, string filter, MqttQualityOfServiceLevel qos) =>
        new() { PacketIdentifier = id, TopicFilters = [new MqttTopicFilter { Topic = filter, QualityOfServiceLevel = qos }] };

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.ExactlyOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task Message_is_delivered_at_each_qos(MqttProtocolVersion version, MqttQualityOfServiceLevel qos)
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SendAsync(Subscribe(1, "a/+", MqttQualityOfServiceLevel.ExactlyOnce));
        var subAck = await sub.ReceiveAsync<MqttSubAckPacket>();
        Assert.Equal((MqttSubscribeReasonCode)2, subAck.ReasonCodes[0]);

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.SendAsync(Publish("a/b", "hello", qos, qos > 0 ? (ushort)7 : (ushort)0));
        if (qos == MqttQualityOfServiceLevel.AtLeastOnce)
        {
            Assert.Equal(7, (await pub.ReceiveAsync<MqttPubAckPacket>()).PacketIdentifier);
        }
        else if (qos == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            await pub.ReceiveAsync<MqttPubRecPacket>();
            await pub.SendAsync(new MqttPubRelPacket { PacketIdentifier = 7 });
            await pub.ReceiveAsync<MqttPubCompPacket>();
        }

        var delivered = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("a/b", delivered.Topic);
        Assert.Equal("hello", Encoding.UTF8.GetString(delivered.Payload.ToArray()));
        Assert.Equal(qos, delivered.QualityOfServiceLevel);
        Assert.False(delivered.Retain);
        await pub.DisposeAsync();
        await sub.DisposeAsync();
    }
}
