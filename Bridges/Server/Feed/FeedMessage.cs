using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// An accepted message with its position, as the bridges hand it out. Immutable and shared by every stream; the JSON
/// each transport sends is built once per message and reused for every stream it goes to.
/// </summary>
public sealed class FeedMessage
{
    byte[]? _sseFrame;
    byte[]? _wsTail;
    int _wsTailIdEnd;

    readonly string _epoch;
    string? _id;

    public FeedMessage(long seq, string epoch, string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, DateTimeOffset receivedAt)
    {
        Seq = seq;
        _epoch = epoch;
        Topic = topic;
        Payload = payload;
        QoS = qos;
        Retain = retain;
        ReceivedAt = receivedAt;
    }

    /// <summary>A message whose position text is already known (read back from Kafka: <c>k:&lt;cursor&gt;</c>).</summary>
    public FeedMessage(string id, long seq, string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, DateTimeOffset receivedAt)
        : this(seq, string.Empty, topic, payload, qos, retain, receivedAt)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        _id = id;
    }

    /// <summary>Global order key: strictly increasing over all topics of one history instance.</summary>
    public long Seq { get; }

    /// <summary>The opaque position clients send back (Last-Event-ID, <c>from</c>); made on first use, off the publish path.</summary>
    public string Id => _id ??= new FeedPosition(_epoch, Seq).ToString();

    public string Topic { get; }

    public ReadOnlyMemory<byte> Payload { get; }

    public int QoS { get; }

    public bool Retain { get; }

    public DateTimeOffset ReceivedAt { get; }

    /// <summary>Bytes this message holds in history (payload, topic, id and object overhead).</summary>
    public long Size => Payload.Length + 2L * Topic.Length + 200;

    /// <summary>The SSE event (<c>id:</c>, <c>event: message</c>, <c>data:</c>, blank line), built on first use.</summary>
    public ReadOnlyMemory<byte> SseFrame => _sseFrame ??= BuildSseFrame();

    /// <summary>The WebSocket frame after <c>{"ch":"…",</c>: <c>"ev":"msg","id":…}</c>, built on first use.</summary>
    public ReadOnlyMemory<byte> WebSocketTail => _wsTail ??= BuildWebSocketTail();

    /// <summary>Where a message of the Kafka live feed or the Kafka history is in Kafka; null for other messages.</summary>
    public IotRealtime.Broker.Kafka.KafkaPosition? KafkaPosition { get; init; }

    /// <summary>The SSE event without its <c>id:</c> line (<c>event: message</c>, <c>data:</c>, blank line), for streams that write their own id.</summary>
    public ReadOnlyMemory<byte> SseFrameWithoutId => SseFrame[(Encoding.UTF8.GetByteCount(Id) + 5)..];

    /// <summary>The WebSocket frame after its id (<c>,"topic":…}</c>), for streams that write their own id (<see cref="StreamCursor"/>).</summary>
    public ReadOnlyMemory<byte> WebSocketTailAfterId => WebSocketTail[_wsTailIdEnd..];

    public bool IsUtf8 => Utf8.IsValid(Payload.Span);

    byte[] BuildSseFrame()
    {
        var buffer = new ArrayBufferWriter<byte>(Payload.Length + Topic.Length + 160);
        buffer.Write("id: "u8);
        EncodingExtensions.GetBytes(Encoding.UTF8, Id.AsSpan(), buffer);
        buffer.Write("\nevent: message\ndata: "u8);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("topic", Topic);
            WritePayload(json, "payload");
            json.WriteNumber("qos", QoS);
            json.WriteBoolean("retain", Retain);
            json.WriteString("ts", ReceivedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteEndObject();
        }
        buffer.Write("\n\n"u8);
        return buffer.WrittenSpan.ToArray();
    }

    byte[] BuildWebSocketTail()
    {
        var buffer = new ArrayBufferWriter<byte>(Payload.Length + Topic.Length + 128);
        using (var json = new Utf8JsonWriter(buffer))
        {
            // written as an object, then its opening brace is cut: the socket prepends {"ch":"…",
            json.WriteStartObject();
            json.WriteString("ev", "msg");
            json.WriteString("id", Id);
            json.Flush();
            // where the id ends in the tail, whose opening brace is cut below
            _wsTailIdEnd = buffer.WrittenCount - 1;
            json.WriteString("topic", Topic);
            WritePayload(json, "data");
            json.WriteNumber("qos", QoS);
            json.WriteBoolean("retain", Retain);
            json.WriteString("ts", ReceivedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteEndObject();
        }
        return buffer.WrittenSpan[1..].ToArray();
    }

    void WritePayload(Utf8JsonWriter json, string name)
    {
        var span = Payload.Span;
        if (Utf8.IsValid(span))
        {
            json.WriteString(name, span);
            json.WriteString("enc", "utf8");
        }
        else
        {
            json.WriteBase64String(name, span);
            json.WriteString("enc", "base64");
        }
    }
}
