using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT §4.3.3 and §4.4: QoS 2 exactly once in both directions, redelivery and PUBREL resumption.</summary>
public sealed class ExactlyOnceTests
{

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Resent_qos2_publish_with_dup_is_delivered_once(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version);
        await sub.SendAsync(Subscribe(1, "x", MqttQualityOfServiceLevel.ExactlyOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.SendAsync(Publish("x", "once", MqttQualityOfServiceLevel.ExactlyOnce, 5));
        await pub.ReceiveAsync<MqttPubRecPacket>();
        // the publisher did not see PUBREC (as far as it knows) and resends with DUP=1
        await pub.SendAsync(Publish("x", "once", MqttQualityOfServiceLevel.ExactlyOnce, 5, dup: true));
        Assert.Equal(5, (await pub.ReceiveAsync<MqttPubRecPacket>()).PacketIdentifier);
        await pub.SendAsync(new MqttPubRelPacket { PacketIdentifier = 5 });
        await pub.ReceiveAsync<MqttPubCompPacket>();
        // a repeated PUBREL is answered, and still delivers nothing new
        await pub.SendAsync(new MqttPubRelPacket { PacketIdentifier = 5 });
        await pub.ReceiveAsync<MqttPubCompPacket>();

        var first = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("once", first.Text());
        await sub.SendAsync(new MqttPubRecPacket { PacketIdentifier = first.PacketIdentifier });
        await sub.ReceiveAsync<MqttPubRelPacket>();
        await sub.SendAsync(new MqttPubCompPacket { PacketIdentifier = first.PacketIdentifier });
        await sub.ExpectNothingBeforeMarkerAsync();
    }

    [Fact]
    public async Task Inbound_qos2_state_survives_reconnect_so_a_resend_after_reconnect_is_not_delivered_twice()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SendAsync(Subscribe(1, "x", MqttQualityOfServiceLevel.ExactlyOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", cleanStart: false, configure: c => c.SessionExpiryInterval = 60);
        await pub.SendAsync(Publish("x", "m1", MqttQualityOfServiceLevel.ExactlyOnce, 9));
        await pub.ReceiveAsync<MqttPubRecPacket>();
        await pub.DisposeAsync();

        var (pub2, ack) = await RawMqttClient.ConnectAsync(server.Port, "pub", cleanStart: false, configure: c => c.SessionExpiryInterval = 60);
        Assert.True(ack.IsSessionPresent);
        await pub2.SendAsync(Publish("x", "m1", MqttQualityOfServiceLevel.ExactlyOnce, 9, dup: true));
        await pub2.ReceiveAsync<MqttPubRecPacket>();
        await pub2.SendAsync(new MqttPubRelPacket { PacketIdentifier = 9 });
        Assert.Equal(MqttPubCompReasonCode.Success, (await pub2.ReceiveAsync<MqttPubCompPacket>()).ReasonCode);

        var delivered = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal("m1", delivered.Text());
        await sub.SendAsync(new MqttPubRecPacket { PacketIdentifier = delivered.PacketIdentifier });
        await sub.ReceiveAsync<MqttPubRelPacket>();
        await sub.ExpectNothingBeforeMarkerAsync();
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.ExactlyOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task Unacknowledged_delivery_is_resent_with_dup_on_reconnect(MqttProtocolVersion version, MqttQualityOfServiceLevel qos)
    {
        await using var server = EngineServer.Start();
        void Persistent(MqttConnectPacket c) => c.SessionExpiryInterval = 300;
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version, cleanStart: false, configure: Persistent);
        await sub.SendAsync(Subscribe(1, "r", qos));
        await sub.ReceiveAsync<MqttSubAckPacket>();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub", version);
        await pub.SendAsync(Publish("r", "again", qos, 3));
        await pub.ReceivePacketAckAsync(qos, 3);

        var first = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.False(first.Dup);
        await sub.DisposeAsync(); // no PUBACK/PUBREC

        var (sub2, ack) = await RawMqttClient.ConnectAsync(server.Port, "sub", version, cleanStart: false, configure: Persistent);
        Assert.True(ack.IsSessionPresent);
        var again = await sub2.ReceiveAsync<MqttPublishPacket>();
        Assert.True(again.Dup);
        Assert.Equal(first.PacketIdentifier, again.PacketIdentifier);
        Assert.Equal("again", again.Text());
    }

    [Fact]
    public async Task Pubrel_is_resent_on_reconnect_when_pubcomp_was_missing()
    {
        await using var server = EngineServer.Start();
        void Persistent(MqttConnectPacket c) => c.SessionExpiryInterval = 300;
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
        await sub.SendAsync(Subscribe(1, "r", MqttQualityOfServiceLevel.ExactlyOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.SendAsync(Publish("r", "p", MqttQualityOfServiceLevel.ExactlyOnce, 3));
        await pub.ReceivePacketAckAsync(MqttQualityOfServiceLevel.ExactlyOnce, 3);

        var delivered = await sub.ReceiveAsync<MqttPublishPacket>();
        await sub.SendAsync(new MqttPubRecPacket { PacketIdentifier = delivered.PacketIdentifier });
        await sub.ReceiveAsync<MqttPubRelPacket>();
        await sub.DisposeAsync(); // no PUBCOMP

        var (sub2, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", cleanStart: false, configure: Persistent);
        var rel = await sub2.ReceiveAsync<MqttPubRelPacket>();
        Assert.Equal(delivered.PacketIdentifier, rel.PacketIdentifier);
        await sub2.SendAsync(new MqttPubCompPacket { PacketIdentifier = rel.PacketIdentifier });
        await sub2.ExpectNothingBeforeMarkerAsync();
    }

    [Fact]
    public async Task Deliveries_to_one_subscriber_keep_publish_order()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SendAsync(Subscribe(1, "o/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        for (var i = 1; i <= 200; i++)
        {
            await pub.SendAsync(Publish("o/t", i.ToString(), (MqttQualityOfServiceLevel)(i % 3), i % 3 == 0 ? (ushort)0 : (ushort)i));
        }
        for (var i = 1; i <= 200; i++)
        {
            var p = await sub.ReceiveAsync<MqttPublishPacket>();
            Assert.Equal(i.ToString(), p.Text());
            if (p.QualityOfServiceLevel > 0)
            {
                await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = p.PacketIdentifier });
            }
        }
    }
}

internal static class RawClientExtensions
{
    /// <summary>Completes the publisher side of a QoS 1/2 flow.</summary>
    public static async Task ReceivePacketAckAsync(this RawMqttClient client, MqttQualityOfServiceLevel qos, ushort id)
    {
        if (qos == MqttQualityOfServiceLevel.AtLeastOnce)
        {
            Assert.Equal(id, (await client.ReceiveAsync<MqttPubAckPacket>()).PacketIdentifier);
        }
        else if (qos == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            Assert.Equal(id, (await client.ReceiveAsync<MqttPubRecPacket>()).PacketIdentifier);
            await client.SendAsync(new MqttPubRelPacket { PacketIdentifier = id });
            await client.ReceiveAsync<MqttPubCompPacket>();
        }
    }
}
