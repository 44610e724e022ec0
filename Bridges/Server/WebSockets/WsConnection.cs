using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Fleet;
using IotRealtime.Bridges.Operations;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;

namespace IotRealtime.Bridges.WebSockets;

/// <summary>An item of a socket's send queue: a message or presence event of a channel, or a control frame.</summary>
readonly record struct WsItem(WsChannel? Channel, FeedMessage? Message, PresenceEvent? Presence, byte[]? Control, bool GapBefore, WsChannel? Start = null);

/// <summary>
/// One multiplexed WebSocket (docs/bridges.md): a receive loop for sub/unsub/pub/ping and a send loop that writes one
/// bounded queue (all channels, in order per channel) plus a control lane (replies, pongs) that never waits behind data.
/// A sub is started by the send loop itself — register live, read history, send replay — so the replay of a channel
/// always precedes its live messages and nothing between them is lost or sent twice.
/// </summary>
sealed class WsConnection : IBridgeStream
{
    const int BatchSize = 256;
    const string TooBig = "message too big";

    readonly WebSocket _socket;
    readonly WebSocketOptions _options;
    readonly FeedHub _hub;
    readonly IHistorySource _history;
    readonly IBrokerLink _broker;
    readonly BridgeMetrics _metrics;
    readonly ClientIdentity _identity;
    readonly SendQueue<WsItem> _queue;
    readonly Dictionary<string, WsChannel> _channels = new(StringComparer.Ordinal);
    readonly Dictionary<WsChannel, IDisposable> _presence = [];
    readonly ArrayBufferWriter<byte> _scratch = new();
    readonly StallWatch _stall;
    readonly Action _abort;
    int _closedByServer;
    int _drainRetryMs = -1;
    string? _closeReason;

    /// <param name="abort">Closes the connection at once (the client stopped reading: not even a close frame can be sent).</param>
    public WsConnection(WebSocket socket, WebSocketOptions options, FeedHub hub, IHistorySource history, IBrokerLink broker, BridgeMetrics metrics, ClientIdentity identity,
        TimeProvider time, Action abort)
    {
        _socket = socket;
        _options = options;
        _hub = hub;
        _history = history;
        _broker = broker;
        _metrics = metrics;
        _identity = identity;
        _stall = new StallWatch(TimeSpan.FromSeconds(options.StallTimeoutSeconds), time);
        _abort = abort;
        _queue = new SendQueue<WsItem>(options.QueueLength, options.Overflow, dropped =>
        {
            if (dropped.Channel is { } channel) channel.GapPending = true;
            metrics.Dropped();
        });
    }

    internal void Enqueue(WsItem item) => _queue.TryEnqueue(item);

    /// <summary>Whether the server ended the socket for its queue (Disconnect policy) or because a send made no progress for Bridges:WebSocket:StallTimeoutSeconds.</summary>
    public bool ClosedByServer => Volatile.Read(ref _closedByServer) != 0;

    public void Tick(DateTimeOffset now)
    {
        // keep-alive pings and the dead-peer timeout are the WebSocket's own (KeepAliveInterval/KeepAliveTimeout); a
        // stuck send is watched here: its writer cannot see an overflow, nor send a close frame, so the tick closes it
        if (!_stall.Pending || ClosedByServer) return;
        var overflowed = _queue.Overflowed;
        if (!overflowed && !_stall.Expired) return;
        if (Interlocked.Exchange(ref _closedByServer, 1) != 0) return;
        if (overflowed) _metrics.OverflowDisconnect(webSocket: true);
        else _metrics.StallDisconnect(webSocket: true);
        _queue.Close();
        _abort();
        _socket.Abort();
    }

    public void CloseForDrain(TimeSpan retryAfter)
    {
        Volatile.Write(ref _drainRetryMs, (int)retryAfter.TotalMilliseconds);
        _queue.Wake();
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        // cancelling a pending WebSocket receive aborts the socket, so neither loop is cancelled for an orderly close:
        // the send loop is stopped through its queue, the receive loop by the peer's close frame
        var send = SendLoopAsync(cancellationToken);
        var receive = ReceiveLoopAsync(cancellationToken);
        try
        {
            if (await Task.WhenAny(send, receive).ConfigureAwait(false) == send)
            {
                // the server ends it (drain, overflow): close frame first, then give the peer a moment to answer
                await CloseOutputAsync().ConfigureAwait(false);
                await WaitOrAbortAsync(receive).ConfigureAwait(false);
            }
            else
            {
                _queue.Close();
                await WaitOrAbortAsync(send).ConfigureAwait(false);
                await CloseOutputAsync().ConfigureAwait(false);
            }
            await Task.WhenAll(send, receive).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException)
        {
        }
        finally
        {
            _queue.Close();
            lock (_channels)
            {
                foreach (var channel in _channels.Values) Remove(channel);
                _channels.Clear();
            }
        }
    }

    async Task WaitOrAbortAsync(Task task)
    {
        try
        {
            await task.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _socket.Abort();
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException)
        {
        }
    }

    async Task CloseOutputAsync()
    {
        if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        var status = _closeReason is null ? WebSocketCloseStatus.NormalClosure
            : Volatile.Read(ref _drainRetryMs) >= 0 ? (WebSocketCloseStatus)1012 // service restart
            : _closeReason == TooBig ? WebSocketCloseStatus.MessageTooBig
            : (WebSocketCloseStatus)1013; // try again later
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _socket.CloseOutputAsync(status, _closeReason ?? "bye", timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException)
        {
        }
    }

    void Remove(WsChannel channel)
    {
        channel.Active = false;
        _hub.Unsubscribe(channel);
        if (_presence.Remove(channel, out var presence)) presence.Dispose();
        _metrics.ChannelsChanged(-1);
    }

    // ------------------------------------------------------------------ receive

    async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        // a small buffer waits for the next frame (an idle socket holds only this); longer messages are gathered
        var chunk = new byte[256];
        ArrayBufferWriter<byte>? message = null;
        while (!cancellationToken.IsCancellationRequested)
        {
            var result = await _socket.ReceiveAsync(chunk.AsMemory(), cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close) return;
            if (result.EndOfMessage && message is null)
            {
                await HandleFrameAsync(result.MessageType, chunk.AsMemory(0, result.Count), cancellationToken).ConfigureAwait(false);
                continue;
            }
            message ??= new ArrayBufferWriter<byte>(1024);
            message.Write(chunk.AsSpan(0, result.Count));
            if (message.WrittenCount > _options.MaxMessageBytes)
            {
                _closeReason = TooBig;
                return;
            }
            if (result.EndOfMessage)
            {
                await HandleFrameAsync(result.MessageType, message.WrittenMemory, cancellationToken).ConfigureAwait(false);
                message = null;
            }
        }
    }

    Task HandleFrameAsync(WebSocketMessageType type, ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        if (type == WebSocketMessageType.Text) return HandleCommandAsync(frame, cancellationToken);
        SendError(null, "only text frames with one JSON command each are accepted");
        return Task.CompletedTask;
    }

    async Task HandleCommandAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(frame);
        }
        catch (JsonException)
        {
            SendError(null, "not JSON: send one JSON object per text frame, e.g. {\"op\":\"sub\",\"ch\":\"devices/+/telemetry\"}");
            return;
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("op", out var opElement) || opElement.ValueKind != JsonValueKind.String)
            {
                SendError(null, "missing \"op\": one of sub, unsub, pub, ping");
                return;
            }
            var ch = root.TryGetProperty("ch", out var chElement) && chElement.ValueKind == JsonValueKind.String ? chElement.GetString() : null;
            switch (opElement.GetString())
            {
                case "ping":
                    SendControl(w => w.WriteString("ev", "pong"));
                    break;
                case "sub":
                    Subscribe(ch, root);
                    break;
                case "unsub":
                    Unsubscribe(ch);
                    break;
                case "pub":
                    await PublishAsync(root, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    SendError(ch, $"unknown op '{opElement.GetString()}': one of sub, unsub, pub, ping");
                    break;
            }
        }
    }

    void Subscribe(string? ch, JsonElement root)
    {
        if (ch is null)
        {
            SendError(null, "sub needs \"ch\": a topic filter or $presence");
            return;
        }
        if (Sse.FilterRules.Problem(ch) is { } problem)
        {
            SendError(ch, problem);
            return;
        }
        var start = HistoryStart.Live;
        if (root.TryGetProperty("from", out var from) && from.ValueKind == JsonValueKind.String && from.GetString() is { Length: > 0 } position)
        {
            start = position == "earliest" ? HistoryStart.Earliest : HistoryStart.After(position);
        }
        var isPresence = ch == Sse.SseEndpoint.PresenceFilter;
        var decision = _broker.Authorizer.CanSubscribe(_identity, isPresence ? Sse.SseEndpoint.PresenceAclFilter : ch);
        if (decision == SubscribeDecision.Deny)
        {
            SendError(ch, "not authorized");
            return;
        }
        WsChannel channel;
        lock (_channels)
        {
            if (_channels.ContainsKey(ch))
            {
                SendError(ch, "already subscribed: unsub first to subscribe again from another position");
                return;
            }
            if (_channels.Count >= _options.MaxChannels)
            {
                SendError(ch, $"channel limit reached ({_options.MaxChannels} per socket)");
                return;
            }
            channel = new WsChannel(this, ch, start, decision == SubscribeDecision.AllowFiltered && !isPresence, _broker.Authorizer, _identity);
            _channels[ch] = channel;
            _metrics.ChannelsChanged(1);
        }
        // started by the send loop, ahead of data: see the class comment
        _queue.TryEnqueueControl(new WsItem(null, null, null, null, false, channel));
    }

    void Unsubscribe(string? ch)
    {
        WsChannel? channel;
        lock (_channels)
        {
            if (ch is null || !_channels.Remove(ch, out channel))
            {
                SendError(ch, "not subscribed");
                return;
            }
            Remove(channel);
        }
        SendControl(w =>
        {
            w.WriteString("ch", ch);
            w.WriteString("ev", "unsubscribed");
        });
    }

    async Task PublishAsync(JsonElement root, CancellationToken cancellationToken)
    {
        var req = root.TryGetProperty("req", out var reqElement) ? reqElement.ToString() : null;
        var topic = root.TryGetProperty("topic", out var topicElement) && topicElement.ValueKind == JsonValueKind.String ? topicElement.GetString() : null;
        var qos = root.TryGetProperty("qos", out var qosElement) && qosElement.ValueKind == JsonValueKind.Number && qosElement.TryGetInt32(out var q) ? q : 0;
        var retain = root.TryGetProperty("retain", out var retainElement) && retainElement.ValueKind == JsonValueKind.True;
        byte[] payload;
        if (!root.TryGetProperty("data", out var data))
        {
            payload = [];
        }
        else if (data.ValueKind == JsonValueKind.String)
        {
            var isBase64 = root.TryGetProperty("enc", out var enc) && enc.ValueKind == JsonValueKind.String && enc.GetString() == "base64";
            if (isBase64)
            {
                if (!data.TryGetBytesFromBase64(out var decoded))
                {
                    PubAck(req, "data is not valid base64");
                    return;
                }
                payload = decoded;
            }
            else
            {
                payload = Encoding.UTF8.GetBytes(data.GetString()!);
            }
        }
        else
        {
            // any other JSON value is published as its JSON text
            payload = Encoding.UTF8.GetBytes(data.GetRawText());
        }
        if (topic is null || !TopicValidation.IsValidTopicName(topic) || topic.StartsWith('$'))
        {
            PubAck(req, "topic must be a valid MQTT topic name without wildcards (and not a $ topic)");
            return;
        }
        if (qos is < 0 or > 2)
        {
            PubAck(req, "qos must be 0, 1 or 2");
            return;
        }
        if (!_broker.Authorizer.CanPublish(_identity, topic))
        {
            PubAck(req, "not authorized");
            return;
        }
        var outcome = await _broker.PublishAsync(_identity, topic, payload, qos, retain, cancellationToken).ConfigureAwait(false);
        PubAck(req, outcome.Ok ? null : outcome.Reason);
    }

    void PubAck(string? req, string? failure) => SendControl(w =>
    {
        w.WriteString("ev", "puback");
        EventJson.WriteStringOrNull(w, "req", req);
        w.WriteBoolean("ok", failure is null);
        if (failure is not null) w.WriteString("reason", failure);
    });

    void SendError(string? ch, string reason) => SendControl(w =>
    {
        w.WriteString("ev", "error");
        if (ch is not null) w.WriteString("ch", ch);
        w.WriteString("reason", reason);
    });

    void SendControl(Action<Utf8JsonWriter> write) => _queue.TryEnqueueControl(new WsItem(null, null, null, Frame(write), false));

    static byte[] Frame(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            write(json);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    // ------------------------------------------------------------------ send

    async Task SendLoopAsync(CancellationToken cancellationToken)
    {
        var batch = new List<WsItem>();
        while (true)
        {
            await _queue.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (Volatile.Read(ref _drainRetryMs) is var retry and >= 0)
            {
                _closeReason = $"server draining; reconnect in {retry} ms";
                return;
            }
            if (_queue.Overflowed)
            {
                if (Interlocked.Exchange(ref _closedByServer, 1) == 0) _metrics.OverflowDisconnect(webSocket: true);
                _closeReason = "send queue overflow: reconnect and resume from the last position";
                return;
            }
            if (_queue.Closed) return;
            batch.Clear();
            _queue.TakeBatch(batch, BatchSize, MarkGap);
            var sent = 0;
            foreach (var item in batch)
            {
                if (item.Control is { } control)
                {
                    await SendAsync(control, cancellationToken).ConfigureAwait(false);
                }
                else if (item.Start is { } starting)
                {
                    sent += await StartChannelAsync(starting, cancellationToken).ConfigureAwait(false);
                }
                else if (item.Channel is { Active: true } channel)
                {
                    if (item.GapBefore)
                    {
                        await SendGapAsync(channel, EventJson.OverflowGap(channel.LastId, item.Message?.Id), cancellationToken).ConfigureAwait(false);
                    }
                    if (item.Message is { } message)
                    {
                        if (channel.Cursor is not { } cursor || !cursor.Take(message, out var ownId)) continue;
                        await SendMessageAsync(channel, message, ownId, cancellationToken).ConfigureAwait(false);
                        sent++;
                    }
                    else if (item.Presence is { } presence)
                    {
                        await SendAsync(Frame(w =>
                        {
                            w.WriteString("ch", channel.Name);
                            w.WriteString("ev", "presence");
                            w.WritePropertyName("data");
                            EventJson.WritePresenceObject(w, presence);
                        }), cancellationToken).ConfigureAwait(false);
                        sent++;
                    }
                }
            }
            _metrics.WebSocketSent(sent);
        }
    }

    static WsItem MarkGap(WsItem item)
    {
        // under the queue's lock: drops of this channel recorded so far happened before this item
        if (item.Channel is not { GapPending: true } channel) return item;
        channel.GapPending = false;
        return item with { GapBefore = true };
    }

    async Task<int> StartChannelAsync(WsChannel channel, CancellationToken cancellationToken)
    {
        if (!channel.Active) return 0;
        if (channel.IsPresence)
        {
            var subscription = _broker.SubscribePresence(e =>
            {
                if (EventJson.PresenceKind(e) is not null) _queue.TryEnqueue(new WsItem(channel, null, e, null, false));
            });
            lock (_channels)
            {
                if (channel.Active) _presence[channel] = subscription;
                else subscription.Dispose();
            }
            await SendAsync(Frame(w =>
            {
                w.WriteString("ch", channel.Name);
                w.WriteString("ev", "subscribed");
            }), cancellationToken).ConfigureAwait(false);
            return 0;
        }
        // live first (it queues behind this item), then history: see the class comment
        string[] filters = [channel.Name];
        _hub.Subscribe(channel, filters);
        if (!channel.Active)
        {
            _hub.Unsubscribe(channel);
            return 0;
        }
        HistoryRead read;
        try
        {
            read = await _history.ReadAsync(filters, channel.Start, cancellationToken).ConfigureAwait(false);
        }
        catch (Confluent.Kafka.KafkaException e)
        {
            // the channel cannot start where it was asked to: it goes, the socket and its other channels stay
            lock (_channels)
            {
                if (channel.Active && _channels.Remove(channel.Name)) Remove(channel);
            }
            await SendAsync(Frame(w =>
            {
                w.WriteString("ev", "error");
                w.WriteString("ch", channel.Name);
                w.WriteString("reason", $"history is not available from Kafka now: {e.Error.Reason}; subscribe again later");
            }), cancellationToken).ConfigureAwait(false);
            return 0;
        }
        channel.Cursor = _history.Follow(read);
        channel.LastId = channel.Start.Position;
        if (read.Gap is { } gap) await SendGapAsync(channel, gap, cancellationToken).ConfigureAwait(false);
        var sent = 0;
        foreach (var message in read.Messages)
        {
            if (!channel.Accepts(message.Topic)) continue;
            await SendMessageAsync(channel, message, null, cancellationToken).ConfigureAwait(false);
            sent++;
        }
        channel.LastId = read.LastPosition;
        // after the replay, with where the subscription now stands: resuming after that id misses nothing
        await SendAsync(Frame(w =>
        {
            w.WriteString("ch", channel.Name);
            w.WriteString("ev", "subscribed");
            w.WriteString("id", read.LastPosition);
        }), cancellationToken).ConfigureAwait(false);
        return sent;
    }

    /// <param name="ownId">The channel's own position for the message (<see cref="StreamCursor.Take"/>), or null for the message's id.</param>
    async ValueTask SendMessageAsync(WsChannel channel, FeedMessage message, string? ownId, CancellationToken cancellationToken)
    {
        // one frame per message: the channel's prefix and the message's shared tail, copied into a reused buffer
        _scratch.ResetWrittenCount();
        _scratch.Write(channel.Prefix);
        if (ownId is null)
        {
            _scratch.Write(message.WebSocketTail.Span);
        }
        else
        {
            _scratch.Write("\"ev\":\"msg\",\"id\":\""u8);
            _scratch.Write(JsonEncodedText.Encode(ownId).EncodedUtf8Bytes);
            _scratch.Write("\""u8);
            _scratch.Write(message.WebSocketTailAfterId.Span);
        }
        await SendAsync(_scratch.WrittenMemory, cancellationToken).ConfigureAwait(false);
        channel.LastId = ownId ?? message.Id;
    }

    ValueTask SendGapAsync(WsChannel channel, HistoryGap gap, CancellationToken cancellationToken)
    {
        _metrics.Gap(gap.Reason);
        return SendAsync(Frame(w =>
        {
            w.WriteString("ch", channel.Name);
            w.WriteString("ev", "gap");
            EventJson.WriteGapFields(w, gap);
        }), cancellationToken);
    }

    async ValueTask SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        // a send waits while the connection's output buffer is full: the stall watch sees how long
        _stall.Begin();
        try
        {
            await _socket.SendAsync(frame, WebSocketMessageType.Text, WebSocketMessageFlags.EndOfMessage, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _stall.End();
        }
    }
}
