using System.Buffers.Binary;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Tests;

public sealed class MqttWireTests
{
    [Fact]
    public void A_publish_template_parses_back_as_a_frame_with_topic_packet_id_and_payload()
    {
        var frame = MqttWire.PublishTemplate("bench/7", qos: 1, payloadLength: 200, out var idOffset, out var payloadOffset);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(idOffset), 513);
        FanInPayload.Write(frame.AsSpan(payloadOffset), 7, 42, 123456789);

        Assert.True(MqttWire.TryReadFrame(frame, out var header, out var bodyOffset, out var bodyLength, out var malformed));
        Assert.False(malformed);
        Assert.Equal(0x32, header);
        Assert.Equal(3, bodyOffset); // 211-byte body needs a two-byte remaining length
        Assert.Equal(frame.Length - 3, bodyLength);
        Assert.Equal(513, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(idOffset)));
        Assert.True(FanInPayload.TryRead(frame.AsSpan(payloadOffset), out var publisher, out var sequence, out var timestamp));
        Assert.Equal((7, 42L, 123456789L), (publisher, sequence, timestamp));
    }

    [Fact]
    public void A_partial_frame_is_not_read()
    {
        var frame = MqttWire.PublishTemplate("t", qos: 0, payloadLength: 300, out _, out _);
        Assert.False(MqttWire.TryReadFrame(frame.AsSpan(0, 1), out _, out _, out _, out var m1));
        Assert.False(MqttWire.TryReadFrame(frame.AsSpan(0, 2), out _, out _, out _, out var m2));
        Assert.False(MqttWire.TryReadFrame(frame.AsSpan(0, frame.Length - 1), out _, out _, out _, out var m3));
        Assert.False(m1 || m2 || m3);
    }

    [Fact]
    public void A_remaining_length_over_four_bytes_is_malformed()
    {
        Assert.False(MqttWire.TryReadFrame([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], out _, out _, out _, out var malformed));
        Assert.True(malformed);
    }

    [Fact]
    public void Acks_have_the_packet_id_and_pubrel_has_its_required_flags()
    {
        var ack = new byte[MqttWire.AckLength];
        MqttWire.WriteAck(ack, MqttWire.PubRelType, 0x0102);
        Assert.Equal(new byte[] { 0x62, 0x02, 0x01, 0x02 }, ack);
        MqttWire.WriteAck(ack, MqttWire.PubAckType, 7);
        Assert.Equal(new byte[] { 0x40, 0x02, 0x00, 0x07 }, ack);
    }

    [Fact]
    public void Connect_sets_clean_session_only_when_asked()
    {
        Assert.Equal(0x02, MqttWire.Connect("a", 60)[9]);
        Assert.Equal(0x00, MqttWire.Connect("a", 60, cleanSession: false)[9]);
    }
}
