using IotRealtime.Broker.Engine.Sessions;

namespace IotRealtime.Broker.Engine.Routing;

/// <summary>
/// Topic-filter trie. Matching a topic walks its levels (plus the "+" and "#" branches), so the cost of a publish is
/// proportional to topic levels and matches, never to the number of sessions. Shared subscriptions are kept per
/// node as groups; a match picks one member per group, round robin, preferring connected members.
/// Thread-safe: readers share a lock, subscribe/unsubscribe take it exclusively.
/// </summary>
internal sealed class SubscriptionTrie
{
    sealed class Node
    {
        public Dictionary<string, Node>? Children;
        public List<Subscription>? Subscribers;
        public Dictionary<string, SharedGroup>? Groups;

        public bool IsEmpty => (Children is null || Children.Count == 0) && (Subscribers is null || Subscribers.Count == 0) && (Groups is null || Groups.Count == 0);
    }

    internal sealed class SharedGroup
    {
        public readonly List<Subscription> Members = new(2);
        public int Next;

        public Subscription? Pick()
        {
            var count = Members.Count;
            if (count == 0)
            {
                return null;
            }
            // round robin, preferring a member that is online now
            for (var i = 0; i < count; i++)
            {
                var candidate = Members[(Next + i) % count];
                if (candidate.Session.IsConnected)
                {
                    Next = (Next + i + 1) % count;
                    return candidate;
                }
            }
            var fallback = Members[Next % count];
            Next = (Next + 1) % count;
            return fallback;
        }
    }

    readonly Node _root = new();
    readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    int _count;

    public int Count => Volatile.Read(ref _count);

    public void Add(Subscription subscription)
    {
        _lock.EnterWriteLock();
        try
        {
            var node = _root;
            foreach (var level in subscription.TopicFilter.Split('/'))
            {
                node.Children ??= new Dictionary<string, Node>(StringComparer.Ordinal);
                if (!node.Children.TryGetValue(level, out var child))
                {
                    child = new Node();
                    node.Children[level] = child;
                }
                node = child;
            }
            if (subscription.ShareGroup is { } group)
            {
                node.Groups ??= new Dictionary<string, SharedGroup>(StringComparer.Ordinal);
                if (!node.Groups.TryGetValue(group, out var g))
                {
                    g = new SharedGroup();
                    node.Groups[group] = g;
                }
                g.Members.Add(subscription);
            }
            else
            {
                (node.Subscribers ??= new List<Subscription>(1)).Add(subscription);
            }
            _count++;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public bool Remove(Subscription subscription)
    {
        _lock.EnterWriteLock();
        try
        {
            var removed = Remove(_root, subscription.TopicFilter.Split('/'), 0, subscription);
            if (removed)
            {
                _count--;
            }
            return removed;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    static bool Remove(Node node, string[] levels, int index, Subscription subscription)
    {
        if (index == levels.Length)
        {
            if (subscription.ShareGroup is { } group)
            {
                if (node.Groups is null || !node.Groups.TryGetValue(group, out var g) || !g.Members.Remove(subscription))
                {
                    return false;
                }
                if (g.Members.Count == 0)
                {
                    node.Groups.Remove(group);
                }
                return true;
            }
            return node.Subscribers?.Remove(subscription) ?? false;
        }
        if (node.Children is null || !node.Children.TryGetValue(levels[index], out var child))
        {
            return false;
        }
        var removed = Remove(child, levels, index + 1, subscription);
        if (removed && child.IsEmpty)
        {
            node.Children.Remove(levels[index]);
        }
        return removed;
    }

    /// <summary>Collects every non-shared subscription matching <paramref name="topic"/> and one member of each matching shared group.</summary>
    public void Match(string topic, List<Subscription> matches)
    {
        _lock.EnterReadLock();
        try
        {
            var dollar = topic.Length > 0 && topic[0] == '$';
            Match(_root, topic.AsSpan(), atRoot: true, dollar, matches);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    static void Match(Node node, ReadOnlySpan<char> rest, bool atRoot, bool dollar, List<Subscription> matches)
    {
        var children = node.Children;
        if (children is null)
        {
            return;
        }
        var lookup = children.GetAlternateLookup<ReadOnlySpan<char>>();
        var wildcardsAllowed = !(atRoot && dollar);
        if (wildcardsAllowed && lookup.TryGetValue("#", out var hash))
        {
            Collect(hash, matches);
        }
        var slash = rest.IndexOf('/');
        var level = slash < 0 ? rest : rest[..slash];
        var last = slash < 0;
        var next = last ? ReadOnlySpan<char>.Empty : rest[(slash + 1)..];
        if (lookup.TryGetValue(level, out var exact))
        {
            Descend(exact, next, last, dollar, matches);
        }
        if (wildcardsAllowed && lookup.TryGetValue("+", out var plus))
        {
            Descend(plus, next, last, dollar, matches);
        }
    }

    static void Descend(Node child, ReadOnlySpan<char> next, bool last, bool dollar, List<Subscription> matches)
    {
        if (last)
        {
            Collect(child, matches);
            // "a/#" also matches "a"
            if (child.Children is { } cc && cc.TryGetValue("#", out var hash))
            {
                Collect(hash, matches);
            }
        }
        else
        {
            Match(child, next, atRoot: false, dollar, matches);
        }
    }

    static void Collect(Node node, List<Subscription> matches)
    {
        if (node.Subscribers is { } subs)
        {
            matches.AddRange(subs);
        }
        if (node.Groups is { } groups)
        {
            foreach (var group in groups.Values)
            {
                // Pick mutates the round-robin cursor; serialize pickers on the group itself
                lock (group)
                {
                    if (group.Pick() is { } member)
                    {
                        matches.Add(member);
                    }
                }
            }
        }
    }

    /// <summary>Another member of the same shared group than <paramref name="leaving"/>, for handing over its queued messages.</summary>
    public Subscription? PickOtherMember(Subscription leaving)
    {
        _lock.EnterReadLock();
        try
        {
            var node = _root;
            foreach (var level in leaving.TopicFilter.Split('/'))
            {
                if (node.Children is null || !node.Children.TryGetValue(level, out var child))
                {
                    return null;
                }
                node = child;
            }
            if (node.Groups is null || leaving.ShareGroup is null || !node.Groups.TryGetValue(leaving.ShareGroup, out var group))
            {
                return null;
            }
            lock (group)
            {
                for (var i = 0; i < group.Members.Count; i++)
                {
                    var m = group.Pick();
                    if (m is not null && m.Session != leaving.Session)
                    {
                        return m;
                    }
                }
            }
            return null;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }
}
