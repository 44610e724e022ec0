namespace IotRealtime.Broker.Engine.Routing;

/// <summary>
/// A plain MQTT topic filter (no <c>$share/</c> prefix) and the one definition of what it matches, shared by the
/// bridges' feed and histories, Kafka forwarding rules and replay, the ACL and the retained store (the router's
/// subscription trie keeps its own structure: it is the publish hot path). Matching is defined for any text; where a
/// filter comes from outside, check it first with <see cref="TopicValidation.IsValidTopicFilter"/>.
/// </summary>
public sealed class TopicFilter : IEquatable<TopicFilter>
{
    string[]? _levels;

    public TopicFilter(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Text = text;
        IsWildcard = text.AsSpan().IndexOfAny('+', '#') >= 0;
    }

    public string Text { get; }

    /// <summary>False when the filter has no '+' or '#': then it matches exactly the topic equal to its text.</summary>
    public bool IsWildcard { get; }

    /// <summary>The levels (split on '/'), made on first use.</summary>
    public IReadOnlyList<string> Levels => LevelArray;

    internal string[] LevelArray => _levels ??= Text.Split('/');

    public bool Matches(string topic) => Matches(Text, topic);

    /// <summary>True when every topic this filter can match is also matched by <paramref name="rule"/>.</summary>
    public bool IsCoveredBy(TopicFilter rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return TopicFilterRelation.Covers(rule.LevelArray, LevelArray);
    }

    /// <summary>True when some topic is matched by both filters.</summary>
    public bool Overlaps(TopicFilter other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return TopicFilterRelation.Overlaps(LevelArray, other.LevelArray);
    }

    /// <summary>
    /// Whether <paramref name="topic"/> matches <paramref name="filter"/> (MQTT 5 §4.7): '+' one level, a final '#' the
    /// rest including the parent level, and a filter starting with a wildcard never matches a '$' topic (MQTT-4.7.2-1).
    /// Allocation-free.
    /// </summary>
    public static bool Matches(string filter, string topic)
    {
        if (topic.Length > 0 && topic[0] == '$' && filter.Length > 0 && (filter[0] == '+' || filter[0] == '#'))
        {
            return false;
        }
        var f = filter.AsSpan();
        var t = topic.AsSpan();
        while (true)
        {
            var fs = f.IndexOf('/');
            var fl = fs < 0 ? f : f[..fs];
            if (fl.Length == 1 && fl[0] == '#')
            {
                return true;
            }
            var ts = t.IndexOf('/');
            var tl = ts < 0 ? t : t[..ts];
            if (!(fl.Length == 1 && fl[0] == '+') && !fl.SequenceEqual(tl))
            {
                return false;
            }
            if (fs < 0 && ts < 0)
            {
                return true;
            }
            if (fs < 0)
            {
                return false;
            }
            f = f[(fs + 1)..];
            if (ts < 0)
            {
                // topic ended: only a trailing "#" level still matches ("a/#" matches "a")
                return f.Length == 1 && f[0] == '#';
            }
            t = t[(ts + 1)..];
        }
    }

    public bool Equals(TopicFilter? other) => other is not null && string.Equals(Text, other.Text, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is TopicFilter other && Equals(other);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Text);

    public override string ToString() => Text;
}
