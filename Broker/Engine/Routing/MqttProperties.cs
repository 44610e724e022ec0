namespace IotRealtime.Broker.Engine.Routing;

/// <summary>
/// Reads MQTT 5 properties straight from packet bytes, for the few cases where MQTTnet's decoded packet cannot tell
/// "absent" from "zero" (Topic Alias 0 is a protocol error; Session Expiry 0 on DISCONNECT ends the session).
/// </summary>
internal static class MqttProperties
{
    public const byte SessionExpiryInterval = 0x11;
    public const byte TopicAlias = 0x23;

    /// <summary>Finds a fixed-width property in a property block starting at <paramref name="offset"/> (at its length varint).</summary>
    public static bool TryFind(ReadOnlySpan<byte> packet, int offset, byte id, out uint value)
    {
        value = 0;
        if (!TryReadVarInt(packet, ref offset, out var length) || offset + length > packet.Length)
        {
            return false;
        }
        var end = offset + length;
        while (offset < end)
        {
            var current = packet[offset++];
            int width;
            switch (current)
            {
                case 0x01 or 0x17 or 0x19 or 0x24 or 0x25 or 0x28 or 0x29 or 0x2A:
                    width = 1;
                    break;
                case 0x13 or 0x21 or 0x22 or 0x23:
                    width = 2;
                    break;
                case 0x02 or 0x11 or 0x18 or 0x27:
                    width = 4;
                    break;
                case 0x0B:
                    if (!TryReadVarInt(packet, ref offset, out _))
                    {
                        return false;
                    }
                    continue;
                case 0x03 or 0x08 or 0x09 or 0x12 or 0x15 or 0x16 or 0x1A or 0x1C or 0x1F:
                    width = 2 + ReadUInt16(packet, offset, end);
                    break;
                case 0x26:
                    var keyLength = 2 + ReadUInt16(packet, offset, end);
                    width = keyLength + 2 + ReadUInt16(packet, offset + keyLength, end);
                    break;
                default:
                    return false;
            }
            if (offset + width > end)
            {
                return false;
            }
            if (current == id)
            {
                for (var i = 0; i < width; i++)
                {
                    value = (value << 8) | packet[offset + i];
                }
                return true;
            }
            offset += width;
        }
        return false;
    }

    static int ReadUInt16(ReadOnlySpan<byte> packet, int offset, int end) =>
        offset + 2 <= end ? (packet[offset] << 8) | packet[offset + 1] : int.MaxValue / 2;

    static bool TryReadVarInt(ReadOnlySpan<byte> packet, ref int offset, out int value)
    {
        value = 0;
        var multiplier = 1;
        for (var i = 0; i < 4; i++)
        {
            if (offset >= packet.Length)
            {
                return false;
            }
            var b = packet[offset++];
            value += (b & 0x7F) * multiplier;
            if ((b & 0x80) == 0)
            {
                return true;
            }
            multiplier *= 128;
        }
        return false;
    }
}
