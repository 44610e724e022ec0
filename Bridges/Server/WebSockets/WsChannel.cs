using System.Buffers;
using System.Text;
using System.Text.Json;
using IotRealtime.Bridges.Feed;
using IotRealtime.Broker.Engine.Security;

namespace IotRealtime.Bridges.WebSockets;

/// <summary>One subscription on a multiplexed socket: a feed listener that queues into the socket's send queue, tagged with itself.</summary>
sealed class WsChannel : FeedListener
{
    readonly WsConnection _connection;
    readonly IMqttAuthorizer _authorizer;
    readonly ClientIdentity _identity;
    readonly bool _filtered;

    public WsChannel(WsConnection connection, string name, HistoryStart start, bool filtered, IMqttAuthorizer authorizer, ClientIdentity identity)
    {
        _connection = connection;
        Name = name;
        Start = start;
        _filtered = filtered;
        _authorizer = authorizer;
        _identity = identity;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(name.Length + 16);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("ch", name);
            json.Flush();
        }
        buffer.Write(","u8);
        Prefix = buffer.WrittenSpan.ToArray();
    }

    public string Name { get; }

    public HistoryStart Start { get; }

    /// <summary><c>{"ch":"…",</c> — what each message frame of this channel starts with.</summary>
    public byte[] Prefix { get; }

    public bool IsPresence => Name == Sse.SseEndpoint.PresenceFilter;

    /// <summary>Cleared on unsubscribe: items still queued for it are skipped.</summary>
    public volatile bool Active = true;

    /// <summary>Send loop only: where the channel stands after its history read (null until it is read): which live messages it still sends, with which id.</summary>
    public StreamCursor? Cursor { get; set; }

    /// <summary>Send loop only: the last position sent on this channel.</summary>
    public string? LastId { get; set; }

    /// <summary>Under the send queue's lock: an item of this channel was dropped and the next one must be preceded by a gap.</summary>
    public bool GapPending { get; set; }

    public override bool Accepts(string topic) => !_filtered || _authorizer.CanReceive(_identity, topic);

    public override void Offer(FeedMessage message) => _connection.Enqueue(new WsItem(this, message, null, null, false));

    public override string ToString() => Encoding.UTF8.GetString(Prefix);
}
