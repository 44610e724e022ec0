using System.Buffers.Binary;
using System.Text;

namespace IotRealtime.Device.Simulator.Fleet.Raw;

/// <summary>An MQTT 3.1.1 CONNECT with what a fleet device sends: clean or persistent session, keep-alive, optional will and credentials.</summary>
public static class ConnectPacket
{
    public static byte[] Build(string clientId, ushort keepAliveSeconds, bool cleanSession, string? username, string? password,
        string? willTopic, ReadOnlySpan<byte> willPayload, int willQos)
    {
        var fields = new List<byte[]> { Encoding.UTF8.GetBytes(clientId) };
        byte flags = cleanSession ? (byte)0x02 : (byte)0x00;
        if (willTopic is not null)
        {
            flags |= (byte)(0x04 | (willQos << 3));
            fields.Add(Encoding.UTF8.GetBytes(willTopic));
            fields.Add(willPayload.ToArray());
        }

        if (username is not null)
        {
            flags |= 0x80;
            fields.Add(Encoding.UTF8.GetBytes(username));
            if (password is not null)
            {
                flags |= 0x40;
                fields.Add(Encoding.UTF8.GetBytes(password));
            }
        }

        // "MQTT" name (2+4), level, flags, keep-alive (2), then each field with its 2-byte length.
        var remaining = 10 + fields.Sum(f => 2 + f.Length);
        var packet = new byte[1 + Frame.RemainingLengthSize(remaining) + remaining];
        var at = 0;
        packet[at++] = 0x10;
        at += Frame.WriteRemainingLength(packet.AsSpan(at), remaining);
        "\0\u0004MQTT\u0004"u8.CopyTo(packet.AsSpan(at));
        at += 7;
        packet[at++] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), keepAliveSeconds);
        at += 2;
        foreach (var field in fields)
        {
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(at), (ushort)field.Length);
            field.CopyTo(packet, at + 2);
            at += 2 + field.Length;
        }

        return packet;
    }
}
