using System.Buffers;
using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// QoS 1/2 deliveries without MQTT 5 properties are written by the engine itself rather than MQTTnet's encoder: what a
/// client decodes must be the same — topic (multi-byte UTF-8), payload of every Remaining Length size, QoS, retain, packet
/// id, and DUP on a resend.
/// </summary>
public sealed class DirectPublishEncodingTests
{
    const string Topic = "enc/ünï/código";

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Deliveries_decode_to_what_was_published(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0 });
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "enc-pub", version);
        await using var _ = pub;
        var retained = Publish(Topic, "kept", MqttQualityOfServiceLevel.AtLeastOnce, 1, retain: true);
        await pub.SendAsync(retained);
        await pub.ReceiveAsync<MqttPubAckPacket>();

        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "enc-sub", version);
        await using var __ = sub;
        await sub.SendAsync(Subscribe(1, "enc/#", MqttQualityOfServiceLevel.ExactlyOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var atSubscribe = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal((Topic, "kept", MqttQualityOfServiceLevel.AtLeastOnce, true, false), (atSubscribe.Topic, atSubscribe.Text(), atSubscribe.QualityOfServiceLevel, atSubscribe.Retain, atSubscribe.Dup));
        await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = atSubscribe.PacketIdentifier });

        // Remaining Length of 1, 2 and 3 bytes
        foreach (var (size, qos) in new[] { (0, MqttQualityOfServiceLevel.AtLeastOnce), (100, MqttQualityOfServiceLevel.ExactlyOnce), (20_000, MqttQualityOfServiceLevel.AtLeastOnce) })
        {
            var payload = new string((char)('a' + size % 26), size);
            await pub.SendAsync(Publish(Topic, payload, qos, 2));
            if (qos == MqttQualityOfServiceLevel.AtLeastOnce)
            {
                await pub.ReceiveAsync<MqttPubAckPacket>();
            }
            else
            {
                await pub.ReceiveAsync<MqttPubRecPacket>();
                await pub.SendAsync(new MqttPubRelPacket { PacketIdentifier = 2 });
                await pub.ReceiveAsync<MqttPubCompPacket>();
            }
            var got = await sub.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal(Topic, got.Topic);
            Assert.Equal(Encoding.UTF8.GetBytes(payload), got.Payload.ToArray());
            Assert.Equal(qos, got.QualityOfServiceLevel);
            Assert.False(got.Retain);
            Assert.False(got.Dup);
            Assert.NotEqual(0, got.PacketIdentifier);
            if (qos == MqttQualityOfServiceLevel.AtLeastOnce)
            {
                await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = got.PacketIdentifier });
            }
            else
            {
                await sub.SendAsync(new MqttPubRecPacket { PacketIdentifier = got.PacketIdentifier });
                await sub.ReceiveAsync<MqttPubRelPacket>();
                await sub.SendAsync(new MqttPubCompPacket { PacketIdentifier = got.PacketIdentifier });
            }
        }
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task An_unacknowledged_delivery_is_resent_with_DUP_and_its_packet_id(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0 });
        void Persistent(MqttConnectPacket c) => c.SessionExpiryInterval = 300;
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "dup-sub", version, cleanStart: false, configure: Persistent);
        await sub.SendAsync(Subscribe(1, "dup/t", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "dup-pub", version);
        await using var _ = pub;
        await pub.SendAsync(Publish("dup/t", "once", MqttQualityOfServiceLevel.AtLeastOnce, 5));
        await pub.ReceiveAsync<MqttPubAckPacket>();
        var first = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.False(first.Dup);
        await sub.DisposeAsync(); // no PUBACK

        var (again, connAck) = await RawMqttClient.ConnectAsync(server.Port, "dup-sub", version, cleanStart: false, configure: Persistent);
        await using var __ = again;
        Assert.True(connAck.IsSessionPresent);
        var resent = await again.ReceiveAsync<MqttPublishPacket>();
        Assert.True(resent.Dup);
        Assert.Equal(first.PacketIdentifier, resent.PacketIdentifier);
        Assert.Equal(("dup/t", "once", MqttQualityOfServiceLevel.AtLeastOnce), (resent.Topic, resent.Text(), resent.QualityOfServiceLevel));
    }
}
