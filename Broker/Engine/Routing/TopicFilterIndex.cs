namespace IotRealtime.Broker.Engine.Routing;

/// <summary>
/// Values keyed by <see cref="TopicFilter"/>, found by topic: a filter without wildcards costs one dictionary lookup
/// per topic (skipped while there is none), a wildcard filter one match. Entries keep the order they were added in, so
/// a rule list where the first match wins (Kafka forwarding) is <see cref="TryFirstMatch"/>; the bridges' feed hub
/// enumerates every match with <see cref="Matching"/>. Not thread-safe: writers and readers share the owner's lock,
/// or the index is built once and only read.
/// </summary>
public sealed class TopicFilterIndex<T>
{
    sealed class Entry(TopicFilter filter, T value, long order)
    {
        public readonly TopicFilter Filter = filter;
        public readonly long Order = order;
        public T Value = value;
    }

    readonly Dictionary<string, Entry> _exact = new(StringComparer.Ordinal);
    readonly Dictionary<string, Entry> _wildcardByText = new(StringComparer.Ordinal);
    // in the order added: the first match of a rule list is the first one here that matches
    readonly List<Entry> _wildcard = [];
    long _added;

    public int Count => _exact.Count + _wildcard.Count;

    public bool TryGetValue(string filter, out T value)
    {
        if (_exact.TryGetValue(filter, out var entry) || _wildcardByText.TryGetValue(filter, out entry))
        {
            value = entry.Value;
            return true;
        }
        value = default!;
        return false;
    }

    /// <summary>Adds <paramref name="filter"/> after every entry so far; false (and nothing changes) when it is already there.</summary>
    public bool TryAdd(TopicFilter filter, T value)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var entry = new Entry(filter, value, _added);
        if (filter.IsWildcard)
        {
            if (!_wildcardByText.TryAdd(filter.Text, entry)) return false;
            _wildcard.Add(entry);
        }
        else if (!_exact.TryAdd(filter.Text, entry))
        {
            return false;
        }
        _added++;
        return true;
    }

    public bool TryAdd(string filter, T value) => TryAdd(new TopicFilter(filter), value);

    public bool Remove(string filter)
    {
        if (_exact.Remove(filter)) return true;
        if (!_wildcardByText.Remove(filter, out var entry)) return false;
        _wildcard.Remove(entry);
        return true;
    }

    /// <summary>The value of the earliest-added filter that matches <paramref name="topic"/>.</summary>
    public bool TryFirstMatch(string topic, out T value)
    {
        Entry? best = null;
        if (_exact.Count > 0) _exact.TryGetValue(topic, out best);
        foreach (var entry in _wildcard)
        {
            if (best is not null && entry.Order > best.Order) break;
            if (entry.Filter.Matches(topic))
            {
                best = entry;
                break;
            }
        }
        value = best is null ? default! : best.Value;
        return best is not null;
    }

    /// <summary>The values of every filter matching <paramref name="topic"/>: the exact one first, then wildcards in the order added. Allocation-free.</summary>
    public MatchEnumerator Matching(string topic) => new(this, topic);

    /// <summary>Enumerates <see cref="Matching"/>; the index must not change meanwhile.</summary>
    public struct MatchEnumerator
    {
        readonly TopicFilterIndex<T> _index;
        readonly string _topic;
        int _next;
        T _current;

        internal MatchEnumerator(TopicFilterIndex<T> index, string topic)
        {
            _index = index;
            _topic = topic;
            _next = -1;
            _current = default!;
        }

        public readonly T Current => _current;

        public readonly MatchEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_next < 0)
            {
                _next = 0;
                if (_index._exact.Count > 0 && _index._exact.TryGetValue(_topic, out var exact))
                {
                    _current = exact.Value;
                    return true;
                }
            }
            var wildcard = _index._wildcard;
            while (_next < wildcard.Count)
            {
                var entry = wildcard[_next++];
                if (entry.Filter.Matches(_topic))
                {
                    _current = entry.Value;
                    return true;
                }
            }
            return false;
        }
    }
}
