using System.Buffers.Binary;
using System.Text;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// Reads the reason code and Server Reference (property 0x1C) of an MQTT 5 DISCONNECT sent by the broker: the client
/// library reports the reason of a disconnect but not where a 0x9C/0x9D asks the device to go.
/// </summary>
public static class DisconnectPacketReader
{
    public static bool TryRead(ReadOnlySpan<byte> packet, out int reasonCode, out string? serverReference)
    {
        reasonCode = 0;
        serverReference = null;
        if (packet.Length < 2 || packet[0] != 0xE0) return false;
        var at = 1;
        if (!TryVarInt(packet, ref at, out var remaining) || at + remaining > packet.Length) return false;
        if (remaining == 0) return true;
        reasonCode = packet[at++];
        if (remaining < 2) return true;
        if (!TryVarInt(packet, ref at, out var propertiesLength)) return false;
        var end = at + propertiesLength;
        if (end > packet.Length) return false;
        while (at < end)
        {
            var id = packet[at++];
            switch (id)
            {
                case 0x11: at += 4; break;
                case 0x1C or 0x1F:
                    if (at + 2 > end) return false;
                    var length = BinaryPrimitives.ReadUInt16BigEndian(packet[at..]);
                    at += 2;
                    if (at + length > end) return false;
                    if (id == 0x1C) serverReference = Encoding.UTF8.GetString(packet.Slice(at, length));
                    at += length;
                    break;
                case 0x26:
                    for (var s = 0; s < 2; s++)
                    {
                        if (at + 2 > end) return false;
                        at += 2 + BinaryPrimitives.ReadUInt16BigEndian(packet[at..]);
                    }

                    break;
                default: return true;
            }
        }

        return true;
    }

    static bool TryVarInt(ReadOnlySpan<byte> packet, ref int at, out int value)
    {
        value = 0;
        var multiplier = 1;
        for (var i = 0; i < 4 && at < packet.Length; i++)
        {
            var digit = packet[at++];
            value += (digit & 0x7F) * multiplier;
            if ((digit & 0x80) == 0) return true;
            multiplier *= 128;
        }

        return false;
    }

    /// <summary>A Server Reference the simulator may follow: "host:port" (or "host") on a loopback address; null otherwise.</summary>
    public static System.Net.IPEndPoint? LoopbackTarget(string? serverReference, int defaultPort)
    {
        if (string.IsNullOrWhiteSpace(serverReference)) return null;
        // A reference may list several servers separated by spaces; the first is the one to use.
        var first = serverReference.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        if (System.Net.IPEndPoint.TryParse(first, out var endPoint))
        {
            if (endPoint.Port == 0) endPoint.Port = defaultPort;
        }
        else if (first.StartsWith("localhost", StringComparison.OrdinalIgnoreCase))
        {
            var colon = first.LastIndexOf(':');
            var port = colon > 0 && int.TryParse(first.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture, out var p) ? p : defaultPort;
            endPoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port);
        }
        else
        {
            return null;
        }

        return System.Net.IPAddress.IsLoopback(endPoint.Address) && endPoint.Port is > 0 and <= 65535 ? endPoint : null;
    }
}
