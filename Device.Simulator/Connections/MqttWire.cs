using System.Buffers.Binary;
using System.Text;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>The few MQTT 3.1.1 packets an idle device needs, encoded by hand so a connection holds no codec state.</summary>
public static class MqttWire
{
    public static ReadOnlySpan<byte> PingReq => [0xC0, 0x00];
    public static ReadOnlySpan<byte> Disconnect => [0xE0, 0x00];
    public const int ConnAckLength = 4;

    /// <summary>CONNECT with protocol level 4, clean session, no will, no credentials.</summary>
    public static byte[] Connect(string clientId, ushort keepAliveSeconds)
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
        packet[at++] = 0x02;
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
