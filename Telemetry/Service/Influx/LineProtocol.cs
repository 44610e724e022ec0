using System.Buffers;
using System.Globalization;
using System.Text;

namespace IotRealtime.Telemetry.Influx;

/// <summary>
/// InfluxDB line protocol (<c>measurement,tag=v field=1.5 1700000000000000000</c>), written as UTF-8 into a buffer.
/// Escaping follows the spec shared by InfluxDB 1.x and 2.x: commas and spaces in measurements; commas, equals signs
/// and spaces in tag keys, tag values and field keys; double quotes and backslashes in string field values.
/// A few names cannot be written so that both versions read them back unchanged — empty ones, line breaks, a
/// backslash at the end or before another backslash or a special character (1.x keeps <c>\\</c> literally, 2.x
/// unescapes it) — so <see cref="CheckName"/> refuses them instead of storing a different name.
/// </summary>
public static class LineProtocol
{
    /// <summary>Null when <paramref name="name"/> can be a measurement, tag key, tag value or field key; else why not.</summary>
    public static string? CheckName(string name)
    {
        if (name.Length == 0) return "is empty";
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (c is '\n' or '\r') return "contains a line break";
            if (c == '\\')
            {
                if (i == name.Length - 1) return "ends with a backslash";
                if (name[i + 1] is '\\' or ',' or '=' or ' ') return $"has a backslash before '{name[i + 1]}'";
            }
        }
        return null;
    }

    /// <summary>Null when <paramref name="measurement"/> can be a measurement name; else why not.</summary>
    public static string? CheckMeasurement(string measurement) =>
        CheckName(measurement) ?? (measurement[0] == '#' ? "starts with '#', which makes the line a comment" : null);

    /// <summary>Null when <paramref name="value"/> can be a float field; line protocol has no NaN or infinity.</summary>
    public static string? CheckValue(double value) =>
        double.IsNaN(value) ? "is NaN" : double.IsInfinity(value) ? "is infinite" : null;

    public static void AppendMeasurement(IBufferWriter<byte> w, string measurement) => AppendEscaped(w, measurement, escapeEquals: false);

    /// <summary>Appends a tag key, tag value or field key.</summary>
    public static void AppendName(IBufferWriter<byte> w, string name) => AppendEscaped(w, name, escapeEquals: true);

    /// <summary>Appends a float field value in the shortest form that reads back as the same double.</summary>
    public static void AppendFloat(IBufferWriter<byte> w, double value)
    {
        if (CheckValue(value) is { } problem) throw new ArgumentOutOfRangeException(nameof(value), $"A line protocol float {problem}.");
        var span = w.GetSpan(32);
        if (!value.TryFormat(span, out var written, "R", CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException("A double did not fit in 32 bytes.");
        }
        w.Advance(written);
    }

    /// <summary>Appends an integer field value (<c>123i</c>).</summary>
    public static void AppendInteger(IBufferWriter<byte> w, long value)
    {
        AppendLong(w, value);
        AppendByte(w, (byte)'i');
    }

    /// <summary>Appends a quoted string field value.</summary>
    public static void AppendString(IBufferWriter<byte> w, string value)
    {
        AppendByte(w, (byte)'"');
        var start = 0;
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] is '"' or '\\')
            {
                AppendUtf8(w, value.AsSpan(start, i - start));
                AppendByte(w, (byte)'\\');
                start = i;
            }
        }
        AppendUtf8(w, value.AsSpan(start));
        AppendByte(w, (byte)'"');
    }

    /// <summary>Appends a timestamp in nanoseconds since the Unix epoch (the write uses precision=ns).</summary>
    public static void AppendTimestamp(IBufferWriter<byte> w, long unixNanoseconds) => AppendLong(w, unixNanoseconds);

    /// <summary>Nanoseconds since the Unix epoch; DateTimeOffset carries 100 ns ticks.</summary>
    public static long ToUnixNanoseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    public static void AppendByte(IBufferWriter<byte> w, byte b)
    {
        w.GetSpan(1)[0] = b;
        w.Advance(1);
    }

    static void AppendLong(IBufferWriter<byte> w, long value)
    {
        var span = w.GetSpan(20);
        value.TryFormat(span, out var written, provider: CultureInfo.InvariantCulture);
        w.Advance(written);
    }

    static void AppendEscaped(IBufferWriter<byte> w, string text, bool escapeEquals)
    {
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c is ',' or ' ' || (escapeEquals && c == '='))
            {
                AppendUtf8(w, text.AsSpan(start, i - start));
                AppendByte(w, (byte)'\\');
                start = i;
            }
        }
        AppendUtf8(w, text.AsSpan(start));
    }

    static void AppendUtf8(IBufferWriter<byte> w, ReadOnlySpan<char> chars)
    {
        if (chars.IsEmpty) return;
        var span = w.GetSpan(Encoding.UTF8.GetMaxByteCount(chars.Length));
        w.Advance(Encoding.UTF8.GetBytes(chars, span));
    }
}
