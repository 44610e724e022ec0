using System.Buffers.Binary;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Scenarios.Soak;

/// <summary>A PUBLISH template for one topic, QoS and payload size, filled in per message.</summary>
public sealed class PublishFrame
{
    readonly byte[] _template;
    readonly int _packetIdOffset;
    readonly int _payloadOffset;

    public PublishFrame(string topic, int qos, int payloadBytes) =>
        _template = MqttWire.PublishTemplate(topic, qos, payloadBytes, out _packetIdOffset, out _payloadOffset);

    public byte[] Create(ushort packetId, int publisher, long sequence, long timestamp)
    {
        var frame = (byte[])_template.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(_packetIdOffset), packetId);
        FanInPayload.Write(frame.AsSpan(_payloadOffset), publisher, sequence, timestamp);
        return frame;
    }
}
