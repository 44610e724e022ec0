using IotRealtime.Broker.Engine;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// The winning write of each retained topic on this node, by <see cref="RetainedStamp"/>, so that concurrent writes of
/// one topic on two nodes leave every node with the same message. A clear is kept as a winner too (a tombstone, its
/// empty message), so an older set that arrives after it is not resurrected. Stores and stamps change under one lock:
/// retained writes are few next to the messages that cross.
/// </summary>
internal sealed class RetainedVersions
{
    readonly Lock _gate = new();
    readonly Dictionary<string, (RetainedStamp Stamp, MqttMessage Message)> _winners = new(StringComparer.Ordinal);

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _winners.Count;
            }
        }
    }

    /// <summary>
    /// A write accepted here, already in the local store: recorded if it wins, else the winner is put back. A peer's
    /// older write may have been stored between the engine's store and this call: then the local one is stored again.
    /// </summary>
    public void Local(MqttMessage message, RetainedStamp stamp, Action<MqttMessage> store)
    {
        lock (_gate)
        {
            if (_winners.TryGetValue(message.Topic, out var winner) && winner.Stamp > stamp)
            {
                store(winner.Message);
                return;
            }
            _winners[message.Topic] = (stamp, message);
            if (winner.Message is not null && winner.Stamp.Origin != stamp.Origin)
            {
                store(message);
            }
        }
    }

    /// <summary>A peer's write (live or from a sync): stored when it is not older than the winner; false when it lost.</summary>
    public bool Remote(MqttMessage message, RetainedStamp stamp, Action<MqttMessage> store)
    {
        lock (_gate)
        {
            if (_winners.TryGetValue(message.Topic, out var winner) && winner.Stamp > stamp)
            {
                return false;
            }
            _winners[message.Topic] = (stamp, message);
            store(message);
            return true;
        }
    }

    /// <summary>The stamp of a stored message for a sync: its recorded one, else its accept time here.</summary>
    public RetainedStamp StampOf(MqttMessage message, string node)
    {
        lock (_gate)
        {
            return _winners.TryGetValue(message.Topic, out var winner) && ReferenceEquals(winner.Message, message)
                ? winner.Stamp
                : RetainedStamp.Of(message.ReceivedAt, node);
        }
    }
}
