using System.Text;

namespace IotRealtime.Broker.Engine.Routing;

/// <summary>MQTT topic name and topic filter validity (MQTT 5 §4.7, 3.1.1 §4.7); what a filter matches is <see cref="TopicFilter"/>.</summary>
public static class TopicValidation
{
    public const string SharePrefix = "$share/";

    /// <summary>A topic name as used in PUBLISH: non-empty, no wildcards, no U+0000, at most 65535 bytes.</summary>
    public static bool IsValidTopicName(string topic) =>
        topic.Length > 0 && topic.AsSpan().IndexOfAny('+', '#', '\0') < 0 && !ContainsReplacementChar(topic);

    /// <summary>A topic filter as used in SUBSCRIBE/UNSUBSCRIBE, including the <c>$share/{group}/{filter}</c> form.</summary>
    public static bool IsValidTopicFilter(string filter)
    {
        if (TryParseShared(filter, out var group, out var inner))
        {
            return group.Length > 0 && group.AsSpan().IndexOfAny('+', '#') < 0 && IsValidPlainFilter(inner);
        }
        return !filter.StartsWith(SharePrefix, StringComparison.Ordinal) && filter != "$share" && IsValidPlainFilter(filter);
    }

    static bool IsValidPlainFilter(string filter)
    {
        if (filter.Length == 0 || filter.Contains('\0') || ContainsReplacementChar(filter))
        {
            return false;
        }
        var span = filter.AsSpan();
        for (var i = 0; i < span.Length; i++)
        {
            var c = span[i];
            if (c == '+')
            {
                if ((i > 0 && span[i - 1] != '/') || (i + 1 < span.Length && span[i + 1] != '/'))
                {
                    return false;
                }
            }
            else if (c == '#')
            {
                if ((i > 0 && span[i - 1] != '/') || i != span.Length - 1)
                {
                    return false;
                }
            }
        }
        return true;
    }

    /// <summary>Splits <c>$share/{group}/{filter}</c>. Returns false for a non-shared filter.</summary>
    public static bool TryParseShared(string filter, out string group, out string innerFilter)
    {
        group = string.Empty;
        innerFilter = filter;
        if (!filter.StartsWith(SharePrefix, StringComparison.Ordinal))
        {
            return false;
        }
        var slash = filter.IndexOf('/', SharePrefix.Length);
        if (slash < 0)
        {
            return false;
        }
        group = filter[SharePrefix.Length..slash];
        innerFilter = filter[(slash + 1)..];
        return true;
    }

    /// <summary>Whether <paramref name="topic"/> matches <paramref name="filter"/> (plain filter, no $share prefix): <see cref="TopicFilter.Matches(string, string)"/>, which defines matching.</summary>
    public static bool Matches(string filter, string topic) => TopicFilter.Matches(filter, topic);

    /// <summary>Strict UTF-8 check of raw bytes, rejecting U+0000 as MQTT requires.</summary>
    public static bool IsValidMqttUtf8(ReadOnlySpan<byte> bytes) =>
        System.Text.Unicode.Utf8.IsValid(bytes) && bytes.IndexOf((byte)0) < 0;

    // MQTTnet decodes strings leniently (invalid sequences become U+FFFD); we treat that character as evidence of invalid input.
    static bool ContainsReplacementChar(string s) => s.Contains('\uFFFD');
}
