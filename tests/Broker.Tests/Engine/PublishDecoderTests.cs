using System.Buffers;
using System.Text;
using IotRealtime.Broker.Engine.Framing;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// The engine decodes PUBLISH without properties itself: for every frame MQTTnet's encoder writes, it must read what
/// MQTTnet's decoder reads, and it must leave to that decoder every frame it cannot read whole.
/// </summary>
public sealed class PublishDecoderTests
{
    public static TheoryData<MqttProtocolVersion, MqttQualityOfServiceLevel, bool, bool, string, int> Frames()
    {
        var data = new TheoryData<MqttProtocolVersion, MqttQualityOfServiceLevel, bool, bool, string, int>();
        foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
        {
            foreach (var qos in new[] { MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.ExactlyOnce })
            {
                data.Add(version, qos, false, false, "devices/d-1/telemetry", 0);
                data.Add(version, qos, true, qos > 0, "ünï/código/€", 1);
                data.Add(version, qos, false, qos > 0, "a", 20_000);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Frames))]
    public void Reads_what_MQTTnet_reads(MqttProtocolVersion version, MqttQualityOfServiceLevel qos, bool retain, bool dup, string topic, int payloadSize)
    {
        var payload = Encoding.ASCII.GetBytes(new string('p', payloadSize));
        var sent = new MqttPublishPacket
        {
            Topic = topic,
            QualityOfServiceLevel = qos,
            Retain = retain,
            Dup = dup,
            PacketIdentifier = (ushort)(qos > 0 ? 0xBEEF : 0),
            Payload = new ReadOnlySequence<byte>(payload),
        };
        var (header, body) = Encode(version, sent);

        var ours = PublishDecoder.TryDecode(header, body, version == MqttProtocolVersion.V500, new TopicNameCache());
        var theirs = (MqttPublishPacket)new MqttPacketFormatterAdapter(version, new MqttBufferWriter(4096, 65536))
            .Decode(new ReceivedMqttPacket(header, new ArraySegment<byte>(body), body.Length + 2));

        Assert.NotNull(ours);
        Assert.Equal(
            (theirs.Topic, theirs.QualityOfServiceLevel, theirs.Retain, theirs.Dup, theirs.PacketIdentifier, theirs.TopicAlias),
            (ours.Topic, ours.QualityOfServiceLevel, ours.Retain, ours.Dup, ours.PacketIdentifier, ours.TopicAlias));
        Assert.Equal(theirs.Payload.ToArray(), ours.Payload.ToArray());
        Assert.Equal(payload, ours.Payload.ToArray());
    }

    [Fact]
    public void Owns_its_payload_once_the_frame_is_reused()
    {
        var (header, body) = Encode(MqttProtocolVersion.V311, new MqttPublishPacket { Topic = "t", Payload = new ReadOnlySequence<byte>("abc"u8.ToArray()) });
        var packet = PublishDecoder.TryDecode(header, body, isV5: false, new TopicNameCache())!;
        body.AsSpan().Fill(0);
        Assert.Equal("abc"u8.ToArray(), packet.Payload.ToArray());
    }

    [Fact]
    public void Leaves_properties_and_short_frames_to_MQTTnet()
    {
        var withAlias = new MqttPublishPacket { Topic = "t", TopicAlias = 3, Payload = new ReadOnlySequence<byte>("x"u8.ToArray()) };
        var (header, body) = Encode(MqttProtocolVersion.V500, withAlias);
        Assert.Null(PublishDecoder.TryDecode(header, body, isV5: true, new TopicNameCache()));

        var qos1 = new MqttPublishPacket { Topic = "topic", QualityOfServiceLevel = MqttQualityOfServiceLevel.AtLeastOnce, PacketIdentifier = 1 };
        var (qos1Header, qos1Body) = Encode(MqttProtocolVersion.V311, qos1);
        // the topic length says more bytes than the frame has; a QoS 1 frame ending before its packet id; one byte
        Assert.Null(PublishDecoder.TryDecode(qos1Header, qos1Body.AsSpan(0, 4), isV5: false, new TopicNameCache()));
        Assert.Null(PublishDecoder.TryDecode(qos1Header, qos1Body.AsSpan(0, 8), isV5: false, new TopicNameCache()));
        Assert.Null(PublishDecoder.TryDecode(qos1Header, qos1Body.AsSpan(0, 1), isV5: false, new TopicNameCache()));
        // MQTT 5 without the property length byte
        Assert.Null(PublishDecoder.TryDecode(qos1Header, qos1Body, isV5: true, new TopicNameCache()));
    }

    [Fact]
    public void A_repeated_topic_is_the_same_string_and_a_new_one_is_decoded()
    {
        var cache = new TopicNameCache();
        var first = cache.Get("devices/d-1/telemetry"u8);
        Assert.Same(first, cache.Get("devices/d-1/telemetry"u8));
        Assert.Equal("devices/d-2/telemetry", cache.Get("devices/d-2/telemetry"u8));
        Assert.Equal("devices/d-1/telemetry", cache.Get("devices/d-1/telemetry"u8));
        var longName = new string('x', 300);
        Assert.Equal(longName, cache.Get(Encoding.ASCII.GetBytes(longName)));
        Assert.Equal("devices/d-1/telemetry", cache.Get("devices/d-1/telemetry"u8));
    }

    static (byte Header, byte[] Body) Encode(MqttProtocolVersion version, MqttPublishPacket packet)
    {
        var formatter = new MqttPacketFormatterAdapter(version, new MqttBufferWriter(4096, 65536));
        var buffer = formatter.Encode(packet);
        var frame = new byte[buffer.Length];
        buffer.Packet.AsSpan().CopyTo(frame);
        buffer.Payload.CopyTo(frame.AsSpan(buffer.Packet.Count));
        // fixed header: type and flags, then Remaining Length (1–4 bytes, 7 bits each)
        var offset = 1;
        while ((frame[offset] & 0x80) != 0)
        {
            offset++;
        }
        return (frame[0], frame[(offset + 1)..]);
    }
}
