using System.Buffers;
using System.Runtime.InteropServices;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Framing;

/// <summary>
/// Splits the bytes a connection received into MQTT control packets: the fixed header byte, the Remaining Length
/// (1–4 bytes, MQTT-1.5.5) and the body. Pure: it keeps no state and does not decode the body.
/// </summary>
internal static class MqttFrameReader
{
    /// <summary>
    /// Takes one whole frame from the start of <paramref name="buffer"/> and moves <paramref name="buffer"/> past it;
    /// false (and <paramref name="buffer"/> unchanged) when more bytes are needed.
    /// </summary>
    /// <remarks>
    /// Memory: when the body lies in one segment, <paramref name="body"/> is a view of the pipe's own memory, valid only
    /// until the reader advances the pipe; whatever must outlive the read (a message's payload, a will) is copied by the
    /// decoder. A body spread over segments is copied here.
    /// </remarks>
    /// <exception cref="MqttProtocolError">A Remaining Length over four bytes (malformed), or a frame larger than
    /// <paramref name="maximumPacketSize"/> (known as soon as its length is, before its body arrives).</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, long maximumPacketSize, out byte header, out ArraySegment<byte> body, out int total)
    {
        header = 0;
        body = default;
        total = 0;
        if (buffer.Length < 2)
        {
            return false;
        }
        var reader = new SequenceReader<byte>(buffer);
        reader.TryRead(out header);
        var length = 0;
        var multiplier = 1;
        for (var i = 0; ; i++)
        {
            if (!reader.TryRead(out var b))
            {
                return false;
            }
            if (i == 3 && (b & 0x80) != 0)
            {
                throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "Remaining length is longer than four bytes.");
            }
            length += (b & 0x7F) * multiplier;
            multiplier *= 128;
            if ((b & 0x80) == 0)
            {
                break;
            }
        }
        var headerLength = (int)reader.Consumed;
        if ((long)length + headerLength > maximumPacketSize)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.PacketTooLarge, $"Packet of {length + headerLength} bytes exceeds the maximum packet size {maximumPacketSize}.");
        }
        if (reader.Remaining < length)
        {
            return false;
        }
        var slice = buffer.Slice(headerLength, length);
        body = slice.IsSingleSegment && MemoryMarshal.TryGetArray(slice.First, out var segment) ? segment : new ArraySegment<byte>(slice.ToArray());
        total = headerLength + length;
        buffer = buffer.Slice(total);
        return true;
    }
}
