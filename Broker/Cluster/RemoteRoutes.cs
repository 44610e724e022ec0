using IotRealtime.Broker.Engine.Cluster;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// The routes of the other nodes: a trie over topic levels (with "+" and "#" branches) whose nodes list the peers
/// holding each filter, so matching a topic costs its levels and matches, not the number of routes. A peer's routes
/// are tied to its silo incarnation: a full set replaces them, deltas from another incarnation are ignored, and a
/// silo's death removes only what that silo sent. Readers share a lock; changes take it exclusively.
/// </summary>
internal sealed class RemoteRoutes
{
    sealed class Level
    {
        public Dictionary<string, Level>? Children;
        public HashSet<string>? Nodes;
        public Dictionary<string, SharedRoute>? Groups;

        public bool IsEmpty => (Children is null || Children.Count == 0) && (Nodes is null || Nodes.Count == 0) && (Groups is null || Groups.Count == 0);
    }

    /// <summary>The peers holding members of one shared group on one filter; one is picked per message, round robin.</summary>
    sealed class SharedRoute(ClusterRoute route)
    {
        public readonly ClusterRoute Route = route;
        public readonly List<string> Nodes = new(2);
        public int Next;
    }

    readonly Level _root = new();
    readonly Dictionary<string, (string Silo, HashSet<ClusterRoute> Routes)> _byNode = new(StringComparer.Ordinal);
    readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    int _count;

    /// <summary>Routes held by all peers together (a filter held by two peers counts twice).</summary>
    public int Count => Volatile.Read(ref _count);

    public int CountOf(string node)
    {
        _lock.EnterReadLock();
        try
        {
            return _byNode.TryGetValue(node, out var entry) ? entry.Routes.Count : 0;
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    public bool Has(string node, ClusterRoute route)
    {
        _lock.EnterReadLock();
        try
        {
            return _byNode.TryGetValue(node, out var entry) && entry.Routes.Contains(route);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Applies one batch's route part from <paramref name="node"/>'s silo <paramref name="silo"/>.</summary>
    public void Apply(string node, string silo, bool reset, IEnumerable<ClusterRoute> added, IEnumerable<ClusterRoute> removed)
    {
        _lock.EnterWriteLock();
        try
        {
            if (reset)
            {
                RemoveAll(node);
                _byNode[node] = (silo, new HashSet<ClusterRoute>());
            }
            if (!_byNode.TryGetValue(node, out var entry) || entry.Silo != silo)
            {
                return; // deltas of an incarnation whose full set has not come, or has been replaced
            }
            foreach (var route in added)
            {
                if (entry.Routes.Add(route))
                {
                    Add(node, route);
                }
            }
            foreach (var route in removed)
            {
                if (entry.Routes.Remove(route))
                {
                    Remove(node, route);
                }
            }
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>Forgets the routes of <paramref name="node"/> if they came from <paramref name="silo"/> (the one that left).</summary>
    public bool RemoveNode(string node, string silo)
    {
        _lock.EnterWriteLock();
        try
        {
            if (!_byNode.TryGetValue(node, out var entry) || entry.Silo != silo)
            {
                return false;
            }
            RemoveAll(node);
            return true;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    void RemoveAll(string node)
    {
        if (_byNode.Remove(node, out var entry))
        {
            foreach (var route in entry.Routes)
            {
                Remove(node, route);
            }
        }
    }

    void Add(string node, ClusterRoute route)
    {
        var level = _root;
        foreach (var part in route.TopicFilter.Split('/'))
        {
            level.Children ??= new Dictionary<string, Level>(StringComparer.Ordinal);
            if (!level.Children.TryGetValue(part, out var child))
            {
                level.Children[part] = child = new Level();
            }
            level = child;
        }
        if (route.ShareGroup is { } group)
        {
            level.Groups ??= new Dictionary<string, SharedRoute>(StringComparer.Ordinal);
            if (!level.Groups.TryGetValue(group, out var shared))
            {
                level.Groups[group] = shared = new SharedRoute(route);
            }
            shared.Nodes.Add(node);
        }
        else
        {
            (level.Nodes ??= new HashSet<string>(StringComparer.Ordinal)).Add(node);
        }
        _count++;
    }

    void Remove(string node, ClusterRoute route)
    {
        if (Remove(_root, route.TopicFilter.Split('/'), 0, node, route.ShareGroup))
        {
            _count--;
        }
    }

    static bool Remove(Level level, string[] parts, int index, string node, string? group)
    {
        if (index == parts.Length)
        {
            if (group is null)
            {
                return level.Nodes is not null && level.Nodes.Remove(node);
            }
            if (level.Groups is null || !level.Groups.TryGetValue(group, out var shared) || !shared.Nodes.Remove(node))
            {
                return false;
            }
            if (shared.Nodes.Count == 0)
            {
                level.Groups.Remove(group);
            }
            return true;
        }
        if (level.Children is null || !level.Children.TryGetValue(parts[index], out var child))
        {
            return false;
        }
        var removed = Remove(child, parts, index + 1, node, group);
        if (removed && child.IsEmpty)
        {
            level.Children.Remove(parts[index]);
        }
        return removed;
    }

    /// <summary>
    /// The peers with a plain route matching <paramref name="topic"/> go into <paramref name="nodes"/>; for each shared
    /// route matching it that <paramref name="skipGroup"/> does not claim (a local member has it), one peer is picked
    /// and added to <paramref name="shared"/>.
    /// </summary>
    public void Match(string topic, HashSet<string> nodes, List<(string Node, ClusterRoute Route)> shared, Func<ClusterRoute, bool> skipGroup)
    {
        _lock.EnterReadLock();
        try
        {
            Match(_root, topic, 0, topic.StartsWith('$'), nodes, shared, skipGroup);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    // walks the topic's levels in place (start: where the next level begins; past the end once all are consumed)
    static void Match(Level level, string topic, int start, bool dollar, HashSet<string> nodes, List<(string, ClusterRoute)> shared, Func<ClusterRoute, bool> skipGroup)
    {
        if (level.Children is null)
        {
            return;
        }
        // "+" and "#" at the first level do not match topics starting with '$' (MQTT-4.7.2-1)
        var wildcards = !(dollar && start == 0);
        if (wildcards && level.Children.TryGetValue("#", out var hash))
        {
            Collect(hash, nodes, shared, skipGroup); // "a/#" matches "a" too
        }
        if (start > topic.Length)
        {
            return;
        }
        var end = topic.IndexOf('/', start);
        if (end < 0)
        {
            end = topic.Length;
        }
        if (level.Children.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(topic.AsSpan(start, end - start), out var exact))
        {
            Step(exact, topic, end + 1, dollar, nodes, shared, skipGroup);
        }
        if (wildcards && level.Children.TryGetValue("+", out var plus))
        {
            Step(plus, topic, end + 1, dollar, nodes, shared, skipGroup);
        }
    }

    static void Step(Level child, string topic, int next, bool dollar, HashSet<string> nodes, List<(string, ClusterRoute)> shared, Func<ClusterRoute, bool> skipGroup)
    {
        if (next > topic.Length)
        {
            Collect(child, nodes, shared, skipGroup);
        }
        Match(child, topic, next, dollar, nodes, shared, skipGroup);
    }

    static void Collect(Level level, HashSet<string> nodes, List<(string, ClusterRoute)> shared, Func<ClusterRoute, bool> skipGroup)
    {
        if (level.Nodes is not null)
        {
            nodes.UnionWith(level.Nodes);
        }
        if (level.Groups is null)
        {
            return;
        }
        foreach (var group in level.Groups.Values)
        {
            if (skipGroup(group.Route))
            {
                continue;
            }
            var count = group.Nodes.Count;
            if (count > 0)
            {
                // under the read lock: concurrent publishers share the counter
                var next = (uint)Interlocked.Increment(ref group.Next);
                shared.Add((group.Nodes[(int)(next % (uint)count)], group.Route));
            }
        }
    }
}
