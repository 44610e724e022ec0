using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>
/// The few MQTT 3.1.1 packets the simulator needs, encoded and parsed by hand so a connection holds no codec
/// state and the hot paths write into (and read from) buffers they already own.
/// </summary>
public static class MqttWire
{
    public static ReadOnlySpan<byte> PingReq => [0xC0, 0x00];
    public static ReadOnlySpan<byte> Disconnect => [0xE0, 0x00];
    public const int ConnAckLength = 4;

    /// <summary>Sends DISCONNECT and shuts the socket down, as far as it is still open, then disposes it.</summary>
    public static void SendDisconnectAndClose(Socket socket)
    {
        try
        {
            socket.Send(Disconnect, SocketFlags.None);
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    /// <summary>CONNECT with protocol level 4, no will, no credentials; clean session unless told otherwise.</summary>
    public static byte[] Connect(string clientId, ushort keepAliveSeconds, bool cleanSession = true)
    {
        var idLength = Encoding.UTF8.GetByteCount(clientId);
        // "MQTT" name (2+4) + level (1) + flags (1) + keep-alive (2) + client id (2+n)
        var remaining = 10 + 2 + idLength;
        var packet = new byte[1 + RemainingLengthSize(remaining) + remaining];
        var at = 0;
        packet[at++] = 0x10;
        at += WriteRemainingLength(packet.AsSpan(at), remaining);
        packet[at++] = 0x00;
        packet[at++] = 0x04;
        at += Encoding.ASCII.GetBytes("MQTT", packet.AsSpan(at));
        packet[at++] = 0x04;
        packet[at++] = cleanSession ? (byte)0x02 : (byte)0x00;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), keepAliveSeconds);
        at += 2;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), (ushort)idLength);
        at += 2;
        Encoding.UTF8.GetBytes(clientId, packet.AsSpan(at));
        return packet;
    }

    /// <summary>Returns the CONNACK return code (0 = accepted), or null if the bytes are not a CONNACK.</summary>
    public static byte? ConnAckReturnCode(ReadOnlySpan<byte> packet) =>
        packet.Length >= ConnAckLength && packet[0] == 0x20 && packet[1] == 0x02 ? packet[3] : null;

    public static string ConnAckReason(byte code) => code switch
    {
        1 => "connack: unacceptable protocol version",
        2 => "connack: identifier rejected",
        3 => "connack: server unavailable",
        4 => "connack: bad user name or password",
        5 => "connack: not authorized",
        _ => $"connack: return code {code}",
    };

    public const byte PubAckType = 0x40;
    public const byte PubRecType = 0x50;
    public const byte PubRelType = 0x60;
    public const byte PubCompType = 0x70;
    public const byte SubAckType = 0x90;
    public const byte PublishType = 0x30;

    /// <summary>SUBSCRIBE (packet id <paramref name="packetId"/>) to one filter at <paramref name="qos"/>.</summary>
    public static byte[] Subscribe(ushort packetId, string filter, int qos)
    {
        var filterLength = Encoding.UTF8.GetByteCount(filter);
        var remaining = 2 + 2 + filterLength + 1;
        var packet = new byte[1 + RemainingLengthSize(remaining) + remaining];
        var at = 0;
        packet[at++] = 0x82;
        at += WriteRemainingLength(packet.AsSpan(at), remaining);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), packetId);
        at += 2;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), (ushort)filterLength);
        at += 2;
        at += Encoding.UTF8.GetBytes(filter, packet.AsSpan(at));
        packet[at] = (byte)qos;
        return packet;
    }

    /// <summary>
    /// A PUBLISH frame with a zero packet id and a zero payload of <paramref name="payloadLength"/> bytes; senders copy it
    /// and patch the packet id (at <paramref name="packetIdOffset"/>, QoS 1 and 2 only) and the payload (at
    /// <paramref name="payloadOffset"/>) in place.
    /// </summary>
    public static byte[] PublishTemplate(string topic, int qos, int payloadLength, out int packetIdOffset, out int payloadOffset)
    {
        var topicLength = Encoding.UTF8.GetByteCount(topic);
        var remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + payloadLength;
        var packet = new byte[1 + RemainingLengthSize(remaining) + remaining];
        var at = 0;
        packet[at++] = (byte)(PublishType | (qos << 1));
        at += WriteRemainingLength(packet.AsSpan(at), remaining);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), (ushort)topicLength);
        at += 2;
        at += Encoding.UTF8.GetBytes(topic, packet.AsSpan(at));
        packetIdOffset = qos > 0 ? at : -1;
        if (qos > 0) at += 2;
        payloadOffset = at;
        return packet;
    }

    /// <summary>Writes a 4-byte acknowledgement (PUBACK, PUBREC, PUBREL or PUBCOMP) for <paramref name="packetId"/>.</summary>
    public static void WriteAck(Span<byte> destination, byte type, ushort packetId)
    {
        // PUBREL is the one with flags 0010 (MQTT 3.1.1 section 3.6.1).
        destination[0] = type == PubRelType ? (byte)0x62 : type;
        destination[1] = 0x02;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], packetId);
    }

    public const int AckLength = 4;

    /// <summary>
    /// Finds the frame at the start of <paramref name="buffer"/>: its first byte and where its body starts and ends.
    /// False when the buffer holds only part of a frame; <paramref name="malformed"/> when the length is not valid MQTT.
    /// </summary>
    public static bool TryReadFrame(ReadOnlySpan<byte> buffer, out byte header, out int bodyOffset, out int bodyLength, out bool malformed)
    {
        header = 0;
        bodyOffset = 0;
        bodyLength = 0;
        malformed = false;
        if (buffer.Length < 2) return false;
        header = buffer[0];
        var multiplier = 1;
        var length = 0;
        for (var i = 1; i <= 4; i++)
        {
            if (i >= buffer.Length) return false;
            var digit = buffer[i];
            length += (digit & 0x7F) * multiplier;
            if ((digit & 0x80) == 0)
            {
                bodyOffset = i + 1;
                bodyLength = length;
                return buffer.Length - bodyOffset >= length;
            }

            multiplier *= 128;
        }

        malformed = true;
        return false;
    }

    static int RemainingLengthSize(int length) => length < 128 ? 1 : length < 16_384 ? 2 : length < 2_097_152 ? 3 : 4;

    static int WriteRemainingLength(Span<byte> destination, int length)
    {
        var i = 0;
        do
        {
            var digit = (byte)(length % 128);
            length /= 128;
            destination[i++] = length > 0 ? (byte)(digit | 0x80) : digit;
        }
        while (length > 0);
        return i;
    }
}
