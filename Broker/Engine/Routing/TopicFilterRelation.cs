namespace IotRealtime.Broker.Engine.Routing;

/// <summary>How two MQTT topic filters relate as sets of topics: the ACL authorizes SUBSCRIBE with it (the client sends a
/// filter, not a topic), and the Kafka replayer finds the Kafka topics whose forwarding rules a filter can reach.</summary>
public static class TopicFilterRelation
{
    /// <summary>True when every topic that <paramref name="filter"/> can match is also matched by <paramref name="rule"/>.</summary>
    public static bool Covers(string rule, string filter) => Covers(rule.Split('/'), filter.Split('/'));

    public static bool Covers(string[] rule, string[] filter)
    {
        for (var i = 0; ; i++)
        {
            if (i == rule.Length)
            {
                return i == filter.Length;
            }
            var r = rule[i];
            if (r == "#")
            {
                // A leading wildcard never matches $-topics, so it covers a filter only if that filter cannot reach them.
                return i > 0 || !filter[0].StartsWith('$');
            }
            if (i == filter.Length)
            {
                // filter "a" is covered by rule "a/#" ("#" also matches its parent level), handled above; anything else is not.
                return false;
            }
            var f = filter[i];
            if (f == "#") return false;
            if (r == "+")
            {
                if (i == 0 && f.StartsWith('$')) return false;
                continue;
            }
            if (f == "+" || r != f) return false;
        }
    }

    /// <summary>True when some topic is matched by both filters.</summary>
    public static bool Overlaps(string a, string b) => Overlaps(a.Split('/'), b.Split('/'));

    public static bool Overlaps(string[] a, string[] b)
    {
        for (var i = 0; ; i++)
        {
            if (i == a.Length || i == b.Length)
            {
                // Both end together, or the longer one continues with "#" (which also matches the parent level).
                return a.Length == b.Length || (a.Length == i + 1 && a[i] == "#") || (b.Length == i + 1 && b[i] == "#");
            }
            var x = a[i];
            var y = b[i];
            var xWild = x is "+" or "#";
            var yWild = y is "+" or "#";
            if (i == 0 && ((xWild && y.StartsWith('$')) || (yWild && x.StartsWith('$')))) return false;
            if (x == "#" || y == "#") return true;
            if (!xWild && !yWild && x != y) return false;
        }
    }
}
