using BenchmarkDotNet.Attributes;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>
/// MQTTnet's formatters as the engine uses them: one formatter per version with its own buffer writer (the engine
/// rents them from PacketFormatterPool), encode to an MqttPacketBuffer, decode from a ReceivedMqttPacket.
/// The v5 PUBLISH carries a content type, a message expiry and one user property.
/// </summary>
[MemoryDiagnoser]
public class PacketCodecBenchmarks
{
    IMqttPacketFormatter _formatter = null!;
    MqttPublishPacket _publishQos0 = null!;
    MqttPublishPacket _publishQos1 = null!;
    MqttPubAckPacket _pubAck = null!;
    MqttConnectPacket _connect = null!;
    Frame _publishQos0Frame;
    Frame _publishQos1Frame;
    Frame _pubAckFrame;
    Frame _connectFrame;

    [Params(MqttProtocolVersion.V311, MqttProtocolVersion.V500)]
    public MqttProtocolVersion Version { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _formatter = MqttPacketFormatterAdapter.GetMqttPacketFormatter(Version, new MqttBufferWriter(4096, 64 * 1024));
        var payload = new byte[100];
        new Random(42).NextBytes(payload);
        _publishQos0 = Publish(payload, MqttQualityOfServiceLevel.AtMostOnce, 0);
        _publishQos1 = Publish(payload, MqttQualityOfServiceLevel.AtLeastOnce, 4217);
        _pubAck = new MqttPubAckPacket { PacketIdentifier = 4217 };
        _connect = new MqttConnectPacket
        {
            ClientId = "device-004217",
            Username = "device-004217",
            Password = "secret-token-0123456789"u8.ToArray(),
            CleanSession = false,
            KeepAlivePeriod = 60,
            SessionExpiryInterval = Version == MqttProtocolVersion.V500 ? 3600u : 0,
        };
        _publishQos0Frame = Frame.Of(_formatter.Encode(_publishQos0));
        _publishQos1Frame = Frame.Of(_formatter.Encode(_publishQos1));
        _pubAckFrame = Frame.Of(_formatter.Encode(_pubAck));
        _connectFrame = Frame.Of(_formatter.Encode(_connect));
    }

    MqttPublishPacket Publish(byte[] payload, MqttQualityOfServiceLevel qos, ushort packetId)
    {
        var packet = new MqttPublishPacket
        {
            Topic = "devices/device-004217/telemetry",
            Payload = new System.Buffers.ReadOnlySequence<byte>(payload),
            QualityOfServiceLevel = qos,
            PacketIdentifier = packetId,
        };
        if (Version == MqttProtocolVersion.V500)
        {
            packet.ContentType = "application/json";
            packet.MessageExpiryInterval = 300;
            packet.UserProperties = [new MqttUserProperty("site", new ReadOnlyMemory<byte>("plant-7"u8.ToArray()))];
        }
        return packet;
    }

    [Benchmark]
    public int Encode_publish_qos0() => _formatter.Encode(_publishQos0).Length;

    [Benchmark]
    public int Encode_publish_qos1() => _formatter.Encode(_publishQos1).Length;

    [Benchmark]
    public int Encode_puback() => _formatter.Encode(_pubAck).Length;

    [Benchmark]
    public int Encode_connect() => _formatter.Encode(_connect).Length;

    [Benchmark]
    public MqttPacket Decode_publish_qos0() => _formatter.Decode(_publishQos0Frame.Received);

    [Benchmark]
    public MqttPacket Decode_publish_qos1() => _formatter.Decode(_publishQos1Frame.Received);

    [Benchmark]
    public MqttPacket Decode_puback() => _formatter.Decode(_pubAckFrame.Received);

    [Benchmark]
    public MqttPacket Decode_connect() => _formatter.Decode(_connectFrame.Received);

    /// <summary>An encoded packet split the way the engine's reader hands it to the decoder: fixed header byte and body.</summary>
    readonly record struct Frame(byte Header, ArraySegment<byte> Body)
    {
        public ReceivedMqttPacket Received => new(Header, Body, Body.Count + 2);

        public static Frame Of(MqttPacketBuffer buffer)
        {
            var bytes = new byte[buffer.Length];
            buffer.Packet.AsSpan().CopyTo(bytes);
            System.Buffers.BuffersExtensions.CopyTo(buffer.Payload, bytes.AsSpan(buffer.Packet.Count));
            // remaining length: a variable byte integer after the fixed header byte
            var length = 0;
            var multiplier = 1;
            var index = 1;
            byte b;
            do
            {
                b = bytes[index++];
                length += (b & 0x7F) * multiplier;
                multiplier *= 128;
            }
            while ((b & 0x80) != 0);
            return new Frame(bytes[0], new ArraySegment<byte>(bytes, index, length));
        }
    }
}
