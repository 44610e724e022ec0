namespace IotRealtime.Telemetry.Ingest;

/// <summary>
/// Reuses the strings of device and metric names, which repeat on almost every record, so decoding allocates only for
/// names not seen before. Bounded: when full it starts over (overflow policy: clear).
/// </summary>
sealed class StringPool(int capacity = 100_000)
{
    readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);

    public string Get(ReadOnlySpan<char> value)
    {
        var lookup = _strings.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(value, out var existing)) return existing;
        if (_strings.Count >= capacity) _strings.Clear();
        var created = value.ToString();
        _strings[created] = created;
        return created;
    }

    public string Get(ReadOnlySpan<byte> utf8)
    {
        Span<char> chars = utf8.Length <= 256 ? stackalloc char[256] : new char[utf8.Length];
        var length = System.Text.Encoding.UTF8.GetChars(utf8, chars);
        return Get(chars[..length]);
    }
}
