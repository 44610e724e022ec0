using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Connections;
using IotRealtime.Broker.Engine.Framing;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// One client connection, composed of parts that each own one concern (<c>Broker/Engine/Connections</c>): this type
/// reads frames (<see cref="MqttFrameReader"/>), decodes them and hands each to its handler — CONNECT to
/// <see cref="ConnectHandler"/>, PUBLISH to <see cref="InboundPipeline"/>, PUBACK/PUBREC/PUBREL/PUBCOMP to
/// <see cref="PublishAcknowledgements"/>, SUBSCRIBE/UNSUBSCRIBE to <see cref="SubscribeHandler"/> — and runs the
/// connection's life (close, keep-alive, connect timeout). <see cref="OutboundWriter"/> is the only writer of the pipe,
/// <see cref="DurableAckQueue"/> holds acknowledgements until the store is durable, and <see cref="ConnectionState"/>
/// is the state they share.
/// </summary>
internal sealed class MqttConnection
{
    readonly ConnectionState _state;
    // a mutable struct used in place: not readonly (see ReadBatch)
    ReadBatch _batch = new();
    readonly InboundPipeline _inbound;
    readonly OutboundWriter _writer;
    // made on the first acknowledgement that may have to wait for the store: see SendAckWhenDurable
    DurableAckQueue? _acks;
    // made when first asked for (when the connection ends, or a drain watches it): an idle connection holds none
    TaskCompletionSource? _closed;

    public MqttConnection(MqttBroker broker, IDuplexPipe transport, ConnectionInfo info)
    {
        _state = new ConnectionState(broker, this, transport, info);
        _inbound = new InboundPipeline(_state);
        _writer = new OutboundWriter(_state);
    }

    public ConnectionInfo Info => _state.Info;
    public Session? Session => _state.Session;
    public MqttProtocolVersion ProtocolVersion => _state.Version;
    public Will? Will { get => _state.Will; set => _state.Will = value; }
    public string? ClientId => Session?.ClientId;

    /// <summary>Holds one of the broker's <see cref="BrokerOptions.MaxConnections"/> slots, given back when the connection ends.</summary>
    public bool Admitted
    {
        get => _state.Admitted;
        set => _state.Admitted = value;
    }

    /// <summary>When CONNECT was accepted; null before.</summary>
    public DateTimeOffset? ConnectedAt => _state.ConnectedAt;

    /// <summary>Completes when the connection has ended and its session is detached.</summary>
    public TaskCompletionSource Closed =>
        _closed ?? Interlocked.CompareExchange(ref _closed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null) ?? _closed!;

    /// <summary>Why the connection ended: ClientDisconnect, ClientDisconnectWithWill, a server reason code name (KeepAliveTimeout, SessionTakenOver, …) or ConnectionLost.</summary>
    public string CloseReason => _state.ClientSentDisconnect
        ? (_state.CleanDisconnect ? "ClientDisconnect" : "ClientDisconnectWithWill")
        : _state.CloseReason?.ToString() ?? "ConnectionLost";

    public bool CleanDisconnect => _state.CleanDisconnect;

    /// <summary>Rounds the writer has made: a test's check that an idle writer does not spin.</summary>
    internal long WriteRounds => _writer.WriteRounds;

    /// <summary>The list routing of this connection's publishes collects matches into, reused from one publish to the next.</summary>
    internal List<Subscription> RouteScratch => _batch.RouteScratch;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.Register(static c => ((MqttConnection)c!).RequestClose(MqttDisconnectReasonCode.ServerShuttingDown), this)
            : default;
        try
        {
            await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (MqttProtocolError error)
        {
            _state.Broker.Log.ProtocolError(Info.RemoteEndPoint?.ToString(), ClientId, error.Message);
            RequestClose(error.ReasonCode, lingerForPeer: true);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // the peer went away
        }
        catch (Exception ex)
        {
            _state.Broker.Log.ConnectionFailed(Info.RemoteEndPoint?.ToString(), ClientId, ex);
        }
        finally
        {
            _state.CloseRequested = true;
            Signal();
            if (_inbound.Pump is { } pump)
            {
                try
                {
                    await pump.WaitAsync(TimeSpan.FromSeconds(5), _state.Broker.Time).ConfigureAwait(false);
                }
                catch
                {
                    // accept stage did not finish: its acknowledgements are not sent, the client will resend
                }
            }
            _inbound.AbandonUndecidedInbound();
            await _writer.StopAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            if (_state.LingerForDisconnect)
            {
                await DrainInputBrieflyAsync().ConfigureAwait(false);
            }
            try
            {
                await _state.Transport.Input.CompleteAsync().ConfigureAwait(false);
                await _state.Transport.Output.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // a transport that fails while closing (a broken pipe) must not keep the session online
            }
            _state.Broker.OnConnectionClosed(this, _state.CleanDisconnect);
            _state.Broker.ConnectionEnded(this);
        }
    }

    /// <summary>
    /// After a DISCONNECT with a reason, read and discard what the client still sends for a moment: closing a socket
    /// with unread input makes the kernel reset it, and the client could lose our DISCONNECT.
    /// </summary>
    async Task DrainInputBrieflyAsync()
    {
        using var linger = new CancellationTokenSource(TimeSpan.FromSeconds(2), _state.Broker.Time);
        try
        {
            while (!linger.IsCancellationRequested)
            {
                // IsCanceled here is the CancelPendingRead of RequestClose: keep draining until the peer closes or time is up
                var result = await _state.Transport.Input.ReadAsync(linger.Token).ConfigureAwait(false);
                _state.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception)
        {
            // time is up or the peer is gone
        }
    }

    /// <summary>Asks the connection to close; with a reason, MQTT 5 clients get a DISCONNECT first.</summary>
    public void RequestClose(MqttDisconnectReasonCode? reason, bool lingerForPeer = false, string? serverReference = null)
    {
        if (_state.CloseRequested)
        {
            return;
        }
        _state.CloseReason ??= reason;
        if (reason is { } code && _state.Connected && _state.IsV5)
        {
            _writer.EnqueueControl(new MqttDisconnectPacket { ReasonCode = code, ServerReference = serverReference });
            // a client in the middle of sending must still get to read why it is being disconnected
            _state.LingerForDisconnect = lingerForPeer;
        }
        _state.CloseRequested = true;
        Hold.Interrupt();
        Signal();
        if (lingerForPeer)
        {
            return; // the reader itself is closing (it is not waiting in a read) and goes on to drain the input
        }
        try
        {
            _state.Transport.Input.CancelPendingRead();
        }
        catch (InvalidOperationException)
        {
            // reader already completed
        }
    }

    /// <summary>Where routing asks this publisher to wait for a subscriber to drain (Backpressure).</summary>
    internal PublisherHold Hold { get; } = new();

    /// <summary>Wakes the writer: there is something to write.</summary>
    public void Signal() => _writer.Signal();

    /// <summary>Queues a control packet and wakes the writer (at the end of the read batch, when called from the reader).</summary>
    internal void SendControl(MqttPacket packet)
    {
        _writer.EnqueueControl(packet);
        if (!DeferSignal(this))
        {
            Signal();
        }
    }

    /// <summary>
    /// Sends an acknowledgement that promises durability once the store holds what was decided before it, and after
    /// <paramref name="after"/> when given (a SUBACK waits for its routes to reach the cluster's peers); see <see cref="DurableAckQueue"/>.
    /// </summary>
    internal void SendAckWhenDurable(MqttPacket ack, Task? after = null)
    {
        var store = _state.Broker.Store;
        if (store is null && _acks is null && after is null)
        {
            SendControl(ack);
            return;
        }
        // made by whichever thread gets there first (the reader, an accept-stage pump)
        var acks = _acks ?? Interlocked.CompareExchange(ref _acks, new DurableAckQueue(_state, store), null) ?? _acks!;
        acks.Send(ack, after);
    }

    /// <summary>Called by housekeeping on every tick (250 ms).</summary>
    public void CheckTimeouts(long now)
    {
        var broker = _state.Broker;
        if (!_state.Connected)
        {
            if (broker.Time.GetElapsedTime(_state.OpenedAt, now).TotalSeconds > broker.Options.ConnectTimeoutSeconds)
            {
                RequestClose(null);
            }
            return;
        }
        _writer.CheckWriteStall(now);
        if (_state.KeepAlive > 0 && !Hold.IsWaiting && broker.Time.GetElapsedTime(_state.LastActivity, now).TotalSeconds > _state.KeepAlive * 1.5)
        {
            broker.Log.KeepAliveExpired(ClientId);
            RequestClose(MqttDisconnectReasonCode.KeepAliveTimeout);
        }
    }

    // ---------------------------------------------------------------- reading

    /// <summary>
    /// Memory: a frame's body is a view of the pipe's memory (see <see cref="MqttFrameReader"/>). It stays valid while its
    /// handler runs — also one that completes later, as the reader awaits it before advancing the pipe — and no handler
    /// keeps it: MQTTnet's decoder copies what a packet carries (payload, strings, properties) out of it.
    /// </summary>
    async Task ReadLoopAsync()
    {
        var input = _state.Transport.Input;
        var next = input.ReadAsync();
        while (true)
        {
            var result = await next.ConfigureAwait(false);
            var buffer = result.Buffer;
            var advanced = false;
            _batch.Begin(_state);
            try
            {
                while (!_state.CloseRequested && MqttFrameReader.TryRead(ref buffer, _state.Broker.Options.MaximumPacketSize, out var header, out var body, out var total))
                {
                    _state.Broker.CountReceived(total);
                    var keepReading = HandleFrameAsync(header, body);
                    bool keep;
                    if (keepReading.IsCompletedSuccessfully)
                    {
                        keep = keepReading.Result;
                    }
                    else
                    {
                        // the batch ends where the reader yields its thread
                        _batch.End();
                        keep = await keepReading.ConfigureAwait(false);
                        _batch.Begin(_state);
                    }
                    if (!keep)
                    {
                        _state.CloseRequested = true;
                        return;
                    }
                    if (Hold.IsRequested)
                    {
                        _batch.End();
                        await Hold.WaitAsync(_state).ConfigureAwait(false);
                        _batch.Begin(_state);
                    }
                }
                input.AdvanceTo(buffer.Start, buffer.End);
                advanced = true;
                if (_state.CloseRequested || result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
                // the next read is armed before this batch's answers (SUBACK, UNSUBACK, PUBACK) are sent: what the client
                // sends on seeing one is then reported in the order it arrives, not behind other clients' later packets
                next = input.ReadAsync();
            }
            finally
            {
                if (!advanced)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                }
                _batch.End();
            }
        }
    }

    ValueTask<bool> HandleFrameAsync(byte header, ArraySegment<byte> body)
    {
        var type = (MqttControlPacketType)(header >> 4);
        var received = new ReceivedMqttPacket(header, body, body.Count + 2);
        if (!_state.Connected)
        {
            if (type != MqttControlPacketType.Connect)
            {
                throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, $"Expected CONNECT, got {type}.");
            }
            return new ConnectHandler(_state, _writer, _inbound).HandleConnectFrameAsync(header, body, received);
        }
        FixedHeaderRules.Validate(type, header, _state.IsV5);
        if (body.Count == 2 && PublishAcknowledgements.TryHandleShort(_state, type, (ushort)((body[0] << 8) | body[1])))
        {
            return ValueTask.FromResult(true);
        }
        if (type == MqttControlPacketType.Publish && PublishDecoder.TryDecode(header, body, _state.IsV5, _inbound.TopicNames) is { } simple)
        {
            return _inbound.HandlePublishAsync(simple, body);
        }
        var packet = Decode(received, type);
        switch (packet)
        {
            case MqttPublishPacket publish:
                return _inbound.HandlePublishAsync(publish, body);
            case MqttPubAckPacket ack:
                PublishAcknowledgements.HandlePubAck(_state, ack.PacketIdentifier);
                break;
            case MqttPubRecPacket rec:
                PublishAcknowledgements.HandlePubRec(_state, rec);
                break;
            case MqttPubRelPacket rel:
                PublishAcknowledgements.HandlePubRel(_state, rel.PacketIdentifier);
                break;
            case MqttPubCompPacket comp:
                PublishAcknowledgements.HandlePubComp(_state, comp.PacketIdentifier);
                break;
            case MqttSubscribePacket subscribe:
                SubscribeHandler.HandleSubscribe(_state, subscribe);
                break;
            case MqttUnsubscribePacket unsubscribe:
                SubscribeHandler.HandleUnsubscribe(_state, unsubscribe);
                break;
            case MqttPingReqPacket:
                SendControl(MqttPingRespPacket.Instance);
                break;
            case MqttDisconnectPacket disconnect:
                DisconnectHandler.Handle(_state, disconnect, body);
                return ValueTask.FromResult(false);
            case MqttConnectPacket:
                throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, "Second CONNECT on one connection.");
            default:
                throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, $"Unexpected {type} from a client.");
        }
        return ValueTask.FromResult(true);
    }

    /// <summary>Decodes one frame with a formatter borrowed for it; the packet holds copies of the frame's bytes, never the frame.</summary>
    internal MqttPacket Decode(ReceivedMqttPacket received, MqttControlPacketType type)
    {
        var formatter = _state.Broker.Formatters.Rent(_state.Version);
        try
        {
            return formatter.Decode(received);
        }
        catch (Exception ex)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"Malformed {type}: {ex.Message}");
        }
        finally
        {
            _state.Broker.Formatters.Return(_state.Version, formatter);
        }
    }

    // ---------------------------------------------------------------- read batch

    /// <summary>The time of this read batch (see <see cref="ReadBatch.Now"/>).</summary>
    internal DateTimeOffset BatchNow() => _batch.Now(_state.Broker.Time);

    /// <summary>
    /// Defers waking <paramref name="target"/> to the end of this connection's read batch. Only the reader's own thread,
    /// inside a batch, defers; any other caller (accept-stage pumps, housekeeping) is told to signal at once.
    /// </summary>
    public bool DeferSignal(MqttConnection target) => _batch.Defer(target);
}
