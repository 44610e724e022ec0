using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// A device's telemetry message: JSON <c>{"dev":index,"seq":n,"ts":unixMillis,"temp":..,"hum":..}</c> by default, padded
/// with a <c>"pad"</c> string up to <c>payloadSize</c>; or a template with {dev}, {id}, {seq}, {ts}, {temp}, {hum}.
/// <c>dev</c> and <c>seq</c> let a verifying subscriber count loss and duplication; <c>ts</c> (with microsecond
/// fractions) gives end-to-end latency when sender and verifier share a clock.
/// </summary>
public sealed class TelemetryPayload(int payloadSize, string? template)
{
    public byte[] Build(int device, string clientId, long sequence, double unixMillis, Random random)
    {
        var temp = Math.Round(15 + random.NextDouble() * 15, 2);
        var hum = Math.Round(30 + random.NextDouble() * 50, 1);
        var ts = unixMillis.ToString("F3", CultureInfo.InvariantCulture);
        string text;
        if (template is not null)
        {
            text = template
                .Replace("{dev}", device.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{id}", clientId, StringComparison.Ordinal)
                .Replace("{seq}", sequence.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{ts}", ts, StringComparison.Ordinal)
                .Replace("{temp}", temp.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{hum}", hum.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
            return Pad(Encoding.UTF8.GetBytes(text));
        }

        text = string.Create(CultureInfo.InvariantCulture, $"{{\"dev\":{device},\"seq\":{sequence},\"ts\":{ts},\"temp\":{temp},\"hum\":{hum}");
        var length = Encoding.UTF8.GetByteCount(text) + 1;
        // ,"pad":"" is 9 bytes; pad only when that fits.
        if (payloadSize > length + 9) text += ",\"pad\":\"" + new string('x', payloadSize - length - 9) + "\"";
        return Encoding.UTF8.GetBytes(text + "}");
    }

    byte[] Pad(byte[] bytes)
    {
        if (bytes.Length >= payloadSize) return bytes;
        var padded = new byte[payloadSize];
        bytes.CopyTo(padded, 0);
        padded.AsSpan(bytes.Length).Fill((byte)' ');
        return padded;
    }

    /// <summary>Reads dev, seq and ts from the top level of a JSON payload; false when it is not one of ours.</summary>
    public static bool TryRead(ReadOnlySequence<byte> payload, out int device, out long sequence, out double unixMillis)
    {
        device = -1;
        sequence = -1;
        unixMillis = 0;
        try
        {
            var reader = new Utf8JsonReader(payload);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.CurrentDepth != 1) return false;
                var name = reader.ValueSpan;
                if (!reader.Read()) return false;
                if (name.SequenceEqual("dev"u8) && reader.TokenType == JsonTokenType.Number) device = reader.GetInt32();
                else if (name.SequenceEqual("seq"u8) && reader.TokenType == JsonTokenType.Number) sequence = reader.GetInt64();
                else if (name.SequenceEqual("ts"u8) && reader.TokenType == JsonTokenType.Number) unixMillis = reader.GetDouble();
                else reader.Skip();
            }
        }
        catch (JsonException)
        {
            return false;
        }
        catch (FormatException)
        {
            return false;
        }

        return device >= 0 && sequence >= 0;
    }
}
