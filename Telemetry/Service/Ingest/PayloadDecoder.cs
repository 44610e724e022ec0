using System.Buffers;
using System.Text;
using System.Text.Json;
using IotRealtime.Telemetry.Sinks;

namespace IotRealtime.Telemetry.Ingest;

/// <summary>
/// Turns a JSON object payload into readings: every numeric leaf is one (nested keys joined with '.'), booleans are
/// 0/1, strings, nulls and arrays are skipped. Anything else is refused with a reason, and the record is parked.
/// </summary>
sealed class PayloadDecoder
{
    const int MaxDepth = 32;

    readonly StringPool _names;
    char[] _path = new char[256];

    public PayloadDecoder(StringPool names) => _names = names;

    /// <summary>Appends the payload's readings to <paramref name="readings"/>; returns null, or why there are none (then nothing is appended).</summary>
    public string? Decode(ReadOnlySpan<byte> payload, DateTimeOffset time, string device, List<Reading> readings)
    {
        var start = readings.Count;
        var reason = DecodeCore(payload, time, device, readings);
        if (reason is null && readings.Count == start) reason = "no numeric field in the JSON object";
        if (reason is not null && readings.Count > start) readings.RemoveRange(start, readings.Count - start);
        return reason;
    }

    string? DecodeCore(ReadOnlySpan<byte> payload, DateTimeOffset time, string device, List<Reading> readings)
    {
        if (payload.IsEmpty) return "empty payload";
        var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Skip });
        Span<int> prefix = stackalloc int[MaxDepth + 1];
        var depth = 0;
        var length = 0;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return "not a JSON object";
            prefix[0] = 0;
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        length = AppendName(prefix[depth], ref reader);
                        break;
                    case JsonTokenType.Number:
                        if (reader.TryGetDouble(out var number) && double.IsFinite(number))
                        {
                            readings.Add(new Reading(time, device, _names.Get(_path.AsSpan(0, length)), number));
                        }
                        break;
                    case JsonTokenType.True:
                        readings.Add(new Reading(time, device, _names.Get(_path.AsSpan(0, length)), 1));
                        break;
                    case JsonTokenType.False:
                        readings.Add(new Reading(time, device, _names.Get(_path.AsSpan(0, length)), 0));
                        break;
                    case JsonTokenType.StartArray:
                        reader.Skip();
                        break;
                    case JsonTokenType.StartObject:
                        depth++;
                        prefix[depth] = length + 1;
                        EnsurePath(length + 1);
                        _path[length] = '.';
                        break;
                    case JsonTokenType.EndObject:
                        if (depth == 0)
                        {
                            // The top-level object ended: anything after it is not one JSON value.
                            return reader.Read() ? "trailing data after the JSON object" : null;
                        }
                        depth--;
                        break;
                }
            }
            return "truncated JSON object";
        }
        catch (JsonException e)
        {
            return "not valid JSON: " + e.Message;
        }
    }

    int AppendName(int at, ref Utf8JsonReader reader)
    {
        var raw = reader.HasValueSequence ? reader.ValueSequence.ToArray() : reader.ValueSpan;
        if (!reader.ValueIsEscaped)
        {
            EnsurePath(at + raw.Length);
            return at + Encoding.UTF8.GetChars(raw, _path.AsSpan(at));
        }
        var name = reader.GetString() ?? string.Empty;
        EnsurePath(at + name.Length);
        name.CopyTo(_path.AsSpan(at));
        return at + name.Length;
    }

    void EnsurePath(int length)
    {
        if (length > _path.Length) Array.Resize(ref _path, Math.Max(length, _path.Length * 2));
    }
}
