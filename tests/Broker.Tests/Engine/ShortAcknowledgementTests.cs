using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// Acknowledgements that are only a packet id are read from their two bytes and written as four, without the formatter.
/// MQTT 5 allows both forms for a success (MQTT-3.4.2.1): the short one and one with a reason code and properties must
/// each free the client's receive window, and a short PUBREL must complete a QoS 2 publish.
/// </summary>
public sealed class ShortAcknowledgementTests
{
    [Fact]
    public async Task Short_and_full_PUBACKs_both_free_an_MQTT5_receive_window()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0 });
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "short-ack-sub", configure: c => c.ReceiveMaximum = 1);
        await using var _ = sub;
        await sub.SendAsync(Subscribe(1, "short/ack", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "short-ack-pub", MqttProtocolVersion.V311);
        await using var __ = pub;
        for (var i = 0; i < 6; i++)
        {
            await pub.SendAsync(Publish("short/ack", $"m{i}", MqttQualityOfServiceLevel.AtLeastOnce, (ushort)(i + 1)));
            var ack = await pub.ReceiveAsync<MqttPubAckPacket>();
            Assert.Equal((ushort)(i + 1), ack.PacketIdentifier);
            Assert.Equal(MqttPubAckReasonCode.Success, ack.ReasonCode);
        }
        // with a window of one, each next message leaves only after the previous one's PUBACK was understood
        for (var i = 0; i < 6; i++)
        {
            var message = await sub.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal($"m{i}", message.Text());
            if (i % 2 == 0)
            {
                await sub.SendRawAsync([0x40, 0x02, (byte)(message.PacketIdentifier >> 8), (byte)message.PacketIdentifier]);
            }
            else
            {
                await sub.SendAsync(new MqttPubAckPacket
                {
                    PacketIdentifier = message.PacketIdentifier,
                    ReasonCode = MqttPubAckReasonCode.Success,
                    ReasonString = "taken",
                    UserProperties = [new MqttUserProperty("k", "v"u8.ToArray().AsMemory())],
                });
            }
        }
        // a seventh message arrives only if the sixth PUBACK freed the window
        await pub.SendAsync(Publish("short/ack", "last", MqttQualityOfServiceLevel.AtLeastOnce, 7));
        await pub.ReceiveAsync<MqttPubAckPacket>();
        Assert.Equal("last", (await sub.ReceiveAsync<MqttPublishPacket>()).Text());
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_short_PUBREL_completes_a_QoS2_publish_and_the_id_is_free_again(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0 });
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "short-rel-sub", version);
        await using var _ = sub;
        await sub.SendAsync(Subscribe(1, "short/rel", MqttQualityOfServiceLevel.AtMostOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "short-rel-pub", version);
        await using var __ = pub;
        for (var round = 0; round < 2; round++)
        {
            // the same packet id twice: the second is a new message only if the short PUBREL released the first
            await pub.SendAsync(Publish("short/rel", $"r{round}", MqttQualityOfServiceLevel.ExactlyOnce, 9));
            var rec = await pub.ReceiveAsync<MqttPubRecPacket>();
            Assert.Equal((ushort)9, rec.PacketIdentifier);
            await pub.SendRawAsync([0x62, 0x02, 0x00, 0x09]);
            var comp = await pub.ReceiveAsync<MqttPubCompPacket>();
            Assert.Equal((ushort)9, comp.PacketIdentifier);
            Assert.Equal(MqttPubCompReasonCode.Success, comp.ReasonCode);
            Assert.Equal($"r{round}", (await sub.ReceiveAsync<MqttPublishPacket>()).Text());
        }
    }
}
