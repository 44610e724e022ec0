namespace IotRealtime.Broker.Engine.Retained;

/// <summary>
/// The default retained store: a tree keyed by topic levels. A SUBSCRIBE's lookup walks the filter's levels: an exact
/// level steps to one child, "+" visits the children of one node, "#" collects a subtree, so its cost follows the
/// levels walked and the matches, not the number of retained messages. Matching is that of
/// <see cref="Routing.TopicFilter.Matches(string, string)"/>, including MQTT-4.7.2-1 (a filter starting with a wildcard does not
/// match $ topics). Clearing a topic prunes the nodes it leaves empty, so memory follows the retained topics.
/// Thread-safe: lookups share a lock, set and remove take it exclusively.
/// </summary>
public sealed class InMemoryRetainedStore : IRetainedStore
{
    sealed class Node
    {
        public Dictionary<string, Node>? Children;
        public MqttMessage? Message;
    }

    readonly Node _root = new();
    readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    int _count;
    int _nodes;

    public int Count => Volatile.Read(ref _count);

    /// <summary>Nodes in the tree besides the root: pruning keeps this at most the retained topics' levels.</summary>
    internal int NodeCount => Volatile.Read(ref _nodes);

    public void Set(MqttMessage message)
    {
        if (message.Payload.IsEmpty)
        {
            Remove(message.Topic);
            return;
        }
        _lock.EnterWriteLock();
        try
        {
            var node = _root;
            var rest = message.Topic.AsSpan();
            while (true)
            {
                var slash = rest.IndexOf('/');
                var level = slash < 0 ? rest : rest[..slash];
                node.Children ??= new Dictionary<string, Node>(StringComparer.Ordinal);
                var children = node.Children.GetAlternateLookup<ReadOnlySpan<char>>();
                if (!children.TryGetValue(level, out var child))
                {
                    child = new Node();
                    children[level] = child;
                    _nodes++;
                }
                node = child;
                if (slash < 0)
                {
                    break;
                }
                rest = rest[(slash + 1)..];
            }
            if (node.Message is null)
            {
                _count++;
            }
            node.Message = message;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public bool Remove(string topic)
    {
        _lock.EnterWriteLock();
        try
        {
            return RemoveLocked(topic, expected: null);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public IReadOnlyList<MqttMessage> Match(string topicFilter, DateTimeOffset now)
    {
        var result = new List<MqttMessage>();
        List<MqttMessage>? expired = null;
        var levels = new Routing.TopicFilter(topicFilter).LevelArray;
        _lock.EnterReadLock();
        try
        {
            Collect(levels, now, result, ref expired);
        }
        finally
        {
            _lock.ExitReadLock();
        }
        if (expired is not null)
        {
            _lock.EnterWriteLock();
            try
            {
                foreach (var message in expired)
                {
                    // only if no newer message replaced it since the lookup
                    RemoveLocked(message.Topic, message);
                }
            }
            finally
            {
                _lock.ExitWriteLock();
            }
        }
        return result;
    }

    // Iterative, not recursive: topics and filters may have thousands of levels.
    void Collect(string[] levels, DateTimeOffset now, List<MqttMessage> result, ref List<MqttMessage>? expired)
    {
        var pending = new Stack<(Node Node, int Index)>();
        pending.Push((_root, 0));
        while (pending.TryPop(out var item))
        {
            var (node, index) = item;
            if (index == levels.Length)
            {
                Take(node.Message, now, result, ref expired);
                continue;
            }
            var level = levels[index];
            // MQTT-4.7.2-1: the root's children starting with '$' are the $ topics, which leading wildcards do not match
            var skipDollar = index == 0;
            if (level == "#")
            {
                // a final "#" also matches its parent level ("a/#" matches "a")
                if (index == levels.Length - 1)
                {
                    Take(node.Message, now, result, ref expired);
                }
                TakeSubtree(node, skipDollar, now, result, ref expired);
                continue;
            }
            if (node.Children is null)
            {
                continue;
            }
            if (level == "+")
            {
                foreach (var (key, child) in node.Children)
                {
                    if (!(skipDollar && key.StartsWith('$')))
                    {
                        pending.Push((child, index + 1));
                    }
                }
            }
            else if (node.Children.TryGetValue(level, out var child))
            {
                pending.Push((child, index + 1));
            }
        }
    }

    /// <summary>Every message below <paramref name="top"/> (not its own).</summary>
    static void TakeSubtree(Node top, bool skipDollar, DateTimeOffset now, List<MqttMessage> result, ref List<MqttMessage>? expired)
    {
        if (top.Children is null)
        {
            return;
        }
        var pending = new Stack<Node>();
        foreach (var (key, child) in top.Children)
        {
            if (!(skipDollar && key.StartsWith('$')))
            {
                pending.Push(child);
            }
        }
        while (pending.TryPop(out var node))
        {
            Take(node.Message, now, result, ref expired);
            if (node.Children is not null)
            {
                foreach (var child in node.Children.Values)
                {
                    pending.Push(child);
                }
            }
        }
    }

    static void Take(MqttMessage? message, DateTimeOffset now, List<MqttMessage> result, ref List<MqttMessage>? expired)
    {
        if (message is null)
        {
            return;
        }
        if (message.IsExpired(now))
        {
            (expired ??= []).Add(message);
        }
        else
        {
            result.Add(message);
        }
    }

    /// <summary>
    /// Clears <paramref name="topic"/> (only while its message is <paramref name="expected"/>, when given) and cuts off
    /// the branch that leaves empty: below the deepest node of the path that keeps a message or another child.
    /// </summary>
    bool RemoveLocked(string topic, MqttMessage? expected)
    {
        var node = _root;
        var keep = _root;
        var keepLevelStart = 0;
        var keepLevelLength = 0;
        var keepDepth = 0;
        var depth = 0;
        var start = 0;
        while (true)
        {
            var slash = topic.IndexOf('/', start);
            var length = (slash < 0 ? topic.Length : slash) - start;
            if (node == _root || node.Message is not null || node.Children!.Count > 1)
            {
                keep = node;
                keepLevelStart = start;
                keepLevelLength = length;
                keepDepth = depth;
            }
            if (node.Children is null || !node.Children.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(topic.AsSpan(start, length), out var child))
            {
                return false;
            }
            node = child;
            depth++;
            if (slash < 0)
            {
                break;
            }
            start = slash + 1;
        }
        if (node.Message is null || (expected is not null && !ReferenceEquals(node.Message, expected)))
        {
            return false;
        }
        node.Message = null;
        _count--;
        if (node.Children is { Count: > 0 })
        {
            return true;
        }
        keep.Children!.GetAlternateLookup<ReadOnlySpan<char>>().Remove(topic.AsSpan(keepLevelStart, keepLevelLength));
        _nodes -= depth - keepDepth;
        if (keep.Children.Count == 0)
        {
            keep.Children = null;
        }
        return true;
    }
}
