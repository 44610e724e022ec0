using System.Buffers;
using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Framing;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// One client connection: a reader that decodes and handles packets, and a writer that encodes control packets
/// (their own lane, always first) and then deliveries from the session, flushing once per batch.
/// </summary>
internal sealed partial class MqttConnection
{
    const int MaxDeliveriesPerBatch = 256;

    readonly MqttBroker _broker;
    readonly IDuplexPipe _transport;
    MqttProtocolVersion _version;
    // control lane: a plain queue under its own lock (a ConcurrentQueue preallocates a segment per connection)
    readonly Queue<MqttPacket> _control = new();
    // made on first use (an idle connection never needs them): see WriteDeliveries and EnqueueInbound
    List<Delivery>? _batchList;
    Queue<InboundEntry>? _inboundQueue;

    int _signaled;
    volatile bool _closeRequested;
    bool _connected;
    bool _cleanDisconnect;
    Task? _pumpTask;
    long _lastActivity;
    // Broker:QueueOverflowPolicy=Backpressure: routing asks it to stop reading until a subscriber drains
    readonly Connections.PublisherHold _hold = new();
    readonly long _openedAt;
    ushort _keepAlive;
    int _clientReceiveMaximum;
    uint _clientMaximumPacketSize;
    ushort _clientTopicAliasMaximum;
    Dictionary<ushort, string>? _inboundAliases;
    Dictionary<string, ushort>? _outboundAliases;
    bool _resendInflight;
    bool _lingerForDisconnect;
    int _qos1Pending;
    uint _connectSessionExpiry;

    public MqttConnection(MqttBroker broker, IDuplexPipe transport, ConnectionInfo info)
    {
        _broker = broker;
        _transport = transport;
        Info = info;
        _openedAt = _lastActivity = broker.Time.GetTimestamp();
    }

    public ConnectionInfo Info { get; }
    public Session? Session { get; private set; }
    public MqttProtocolVersion ProtocolVersion => _version;
    bool IsV5 => _version == MqttProtocolVersion.V500;
    public Will? Will { get; set; }
    public string? ClientId => Session?.ClientId;

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
            _broker.Log.ProtocolError(Info.RemoteEndPoint?.ToString(), ClientId, error.Message);
            RequestClose(error.ReasonCode, lingerForPeer: true);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // the peer went away
        }
        catch (Exception ex)
        {
            _broker.Log.ConnectionFailed(Info.RemoteEndPoint?.ToString(), ClientId, ex);
        }
        finally
        {
            _closeRequested = true;
            Signal();
            if (_pumpTask is { } pump)
            {
                try
                {
                    await pump.WaitAsync(TimeSpan.FromSeconds(5), _broker.Time).ConfigureAwait(false);
                }
                catch
                {
                    // accept stage did not finish: its acknowledgements are not sent, the client will resend
                }
            }
            AbandonUndecidedInbound();
            await StopWriterAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            if (_lingerForDisconnect)
            {
                await DrainInputBrieflyAsync().ConfigureAwait(false);
            }
            try
            {
                await _transport.Input.CompleteAsync().ConfigureAwait(false);
                await _transport.Output.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // a transport that fails while closing (a broken pipe) must not keep the session online
            }
            _broker.OnConnectionClosed(this, _cleanDisconnect);
            _broker.ConnectionEnded(this);
        }
    }

    /// <summary>
    /// After a DISCONNECT with a reason, read and discard what the client still sends for a moment: closing a socket
    /// with unread input makes the kernel reset it, and the client could lose our DISCONNECT.
    /// </summary>
    async Task DrainInputBrieflyAsync()
    {
        using var linger = new CancellationTokenSource(TimeSpan.FromSeconds(2), _broker.Time);
        try
        {
            while (!linger.IsCancellationRequested)
            {
                // IsCanceled here is the CancelPendingRead of RequestClose: keep draining until the peer closes or time is up
                var result = await _transport.Input.ReadAsync(linger.Token).ConfigureAwait(false);
                _transport.Input.AdvanceTo(result.Buffer.End);
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
        if (_closeRequested)
        {
            return;
        }
        _closeReason ??= reason;
        if (reason is { } code && _connected && IsV5)
        {
            EnqueueControl(new MqttDisconnectPacket { ReasonCode = code, ServerReference = serverReference });
            // a client in the middle of sending must still get to read why it is being disconnected
            _lingerForDisconnect = lingerForPeer;
        }
        _closeRequested = true;
        _hold.Interrupt();
        Signal();
        if (lingerForPeer)
        {
            return; // the reader itself is closing (it is not waiting in a read) and goes on to drain the input
        }
        try
        {
            _transport.Input.CancelPendingRead();
        }
        catch (InvalidOperationException)
        {
            // reader already completed
        }
    }

    /// <summary>Where routing asks this connection, as a publisher, to wait for a subscriber to drain (Backpressure).</summary>
    internal Connections.PublisherHold Hold => _hold;

    public void Signal()
    {
        if (Interlocked.Exchange(ref _signaled, 1) == 0)
        {
            StartWriterIfIdle();
        }
    }

    void SendControl(MqttPacket packet)
    {
        EnqueueControl(packet);
        if (!DeferSignal(this))
        {
            Signal();
        }
    }

    void EnqueueControl(MqttPacket packet)
    {
        lock (_control)
        {
            _control.Enqueue(packet);
        }
    }

    bool TryDequeueControl(out MqttPacket packet)
    {
        lock (_control)
        {
            return _control.TryDequeue(out packet!);
        }
    }

    /// <summary>Called by housekeeping on every tick (250 ms).</summary>
    public void CheckTimeouts(long now)
    {
        if (!_connected)
        {
            if (_broker.Time.GetElapsedTime(_openedAt, now).TotalSeconds > _broker.Options.ConnectTimeoutSeconds)
            {
                RequestClose(null);
            }
            return;
        }
        CheckWriteStall(now);
        if (_keepAlive > 0 && !_hold.IsWaiting && _broker.Time.GetElapsedTime(Volatile.Read(ref _lastActivity), now).TotalSeconds > _keepAlive * 1.5)
        {
            _broker.Log.KeepAliveExpired(ClientId);
            RequestClose(MqttDisconnectReasonCode.KeepAliveTimeout);
        }
    }

    // ---------------------------------------------------------------- reading

    async Task ReadLoopAsync()
    {
        var input = _transport.Input;
        while (true)
        {
            var result = await input.ReadAsync().ConfigureAwait(false);
            var buffer = result.Buffer;
            BeginReadBatch();
            try
            {
                while (!_closeRequested && MqttFrameReader.TryRead(ref buffer, _broker.Options.MaximumPacketSize, out var header, out var body, out var total))
                {
                    _broker.CountReceived(total);
                    var keepReading = HandleFrameAsync(header, body);
                    bool keep;
                    if (keepReading.IsCompletedSuccessfully)
                    {
                        keep = keepReading.Result;
                    }
                    else
                    {
                        // the batch ends where the reader yields its thread
                        EndReadBatch();
                        keep = await keepReading.ConfigureAwait(false);
                        BeginReadBatch();
                    }
                    if (!keep)
                    {
                        _closeRequested = true;
                        return;
                    }
                    if (_hold.IsRequested)
                    {
                        EndReadBatch();
                        await _hold.WaitAsync(TimeSpan.FromSeconds(_broker.Options.BackpressureTimeoutSeconds), _broker.Time, _broker.Metrics, () => _closeRequested).ConfigureAwait(false);
                        Volatile.Write(ref _lastActivity, _broker.Time.GetTimestamp());
                        BeginReadBatch();
                    }
                }
            }
            finally
            {
                EndReadBatch();
                input.AdvanceTo(buffer.Start, buffer.End);
            }
            if (_closeRequested || result.IsCompleted || result.IsCanceled)
            {
                return;
            }
        }
    }

    ValueTask<bool> HandleFrameAsync(byte header, ArraySegment<byte> body)
    {
        var type = (MqttControlPacketType)(header >> 4);
        var received = new ReceivedMqttPacket(header, body, body.Count + 2);
        if (!_connected)
        {
            if (type != MqttControlPacketType.Connect)
            {
                throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, $"Expected CONNECT, got {type}.");
            }
            return HandleConnectFrameAsync(header, body, received);
        }
        ValidateFixedHeader(type, header);
        var packet = Decode(received, type);
        switch (packet)
        {
            case MqttPublishPacket publish:
                return HandlePublishAsync(publish, body);
            case MqttPubAckPacket ack:
                HandlePubAck(ack.PacketIdentifier);
                break;
            case MqttPubRecPacket rec:
                HandlePubRec(rec);
                break;
            case MqttPubRelPacket rel:
                HandlePubRel(rel.PacketIdentifier);
                break;
            case MqttPubCompPacket comp:
                HandlePubComp(comp.PacketIdentifier);
                break;
            case MqttSubscribePacket subscribe:
                HandleSubscribe(subscribe);
                break;
            case MqttUnsubscribePacket unsubscribe:
                HandleUnsubscribe(unsubscribe);
                break;
            case MqttPingReqPacket:
                SendControl(MqttPingRespPacket.Instance);
                break;
            case MqttDisconnectPacket disconnect:
                HandleDisconnect(disconnect, body);
                return ValueTask.FromResult(false);
            case MqttConnectPacket:
                throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, "Second CONNECT on one connection.");
            default:
                throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, $"Unexpected {type} from a client.");
        }
        return ValueTask.FromResult(true);
    }

    void ValidateFixedHeader(MqttControlPacketType type, byte header)
    {
        var flags = header & 0x0F;
        switch (type)
        {
            case MqttControlPacketType.Publish:
                var qos = (flags >> 1) & 0x03;
                if (qos == 3)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "PUBLISH with QoS 3.");
                }
                if (qos == 0 && (flags & 0x08) != 0)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "PUBLISH QoS 0 with DUP set.");
                }
                break;
            case MqttControlPacketType.PubRel:
            case MqttControlPacketType.Subscribe:
            case MqttControlPacketType.Unsubscribe:
                if (flags != 0x02)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"{type} with reserved flags {flags:x}.");
                }
                break;
            case MqttControlPacketType.Auth when !IsV5:
            case (MqttControlPacketType)0:
                throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"Reserved packet type {(int)type}.");
            default:
                if (flags != 0)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"{type} with reserved flags {flags:x}.");
                }
                break;
        }
    }

    // ---------------------------------------------------------------- CONNECT

    async ValueTask<bool> HandleConnectFrameAsync(byte header, ArraySegment<byte> body, ReceivedMqttPacket received)
    {
        if ((header & 0x0F) != 0)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "CONNECT with reserved flags.");
        }
        _version = DetectProtocolVersion(body);
        if (_version == MqttProtocolVersion.Unknown)
        {
            // unknown protocol name/level: answer in 3.1.1 form (return code 1) as the spec asks, then close
            await WriteRawAndFlushAsync([0x20, 0x02, 0x00, 0x01]).ConfigureAwait(false);
            return false;
        }
        ValidateConnectFlags(body);
        if (!IsV5 && IsEmptyClientIdWithoutCleanSession(body))
        {
            // checked on the bytes: MQTTnet's decoder throws on this CONNECT, and 3.1.1 wants CONNACK 0x02, not a bare close (MQTT-3.1.3-8)
            return await RefuseConnectAsync(MqttConnectReasonCode.ClientIdentifierNotValid, MqttConnectReturnCode.ConnectionRefusedIdentifierRejected).ConfigureAwait(false);
        }
        var connect = (MqttConnectPacket)Decode(received, MqttControlPacketType.Connect);
        return await HandleConnectAsync(connect).ConfigureAwait(false);
    }

    static MqttProtocolVersion DetectProtocolVersion(ArraySegment<byte> body)
    {
        var span = body.AsSpan();
        if (span.Length < 7)
        {
            return MqttProtocolVersion.Unknown;
        }
        var nameLength = (span[0] << 8) | span[1];
        if (span.Length < 2 + nameLength + 1)
        {
            return MqttProtocolVersion.Unknown;
        }
        var name = span.Slice(2, nameLength);
        var level = span[2 + nameLength] & 0x7F; // bit 7 is Mosquitto's bridge flag
        return (name.SequenceEqual("MQTT"u8), name.SequenceEqual("MQIsdp"u8), level) switch
        {
            (true, _, 5) => MqttProtocolVersion.V500,
            (true, _, 4) => MqttProtocolVersion.V311,
            (_, true, 3) => MqttProtocolVersion.V310,
            _ => MqttProtocolVersion.Unknown,
        };
    }

    MqttPacket Decode(ReceivedMqttPacket received, MqttControlPacketType type)
    {
        var formatter = _broker.Formatters.Rent(_version);
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
            _broker.Formatters.Return(_version, formatter);
        }
    }

    void ValidateConnectFlags(ArraySegment<byte> body)
    {
        var span = body.AsSpan();
        var nameLength = (span[0] << 8) | span[1];
        var flagsIndex = 2 + nameLength + 1;
        if (span.Length <= flagsIndex)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "CONNECT too short.");
        }
        var flags = span[flagsIndex];
        var willFlag = (flags & 0x04) != 0;
        var willQos = (flags >> 3) & 0x03;
        var willRetain = (flags & 0x20) != 0;
        if ((flags & 0x01) != 0)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "CONNECT reserved flag set.");
        }
        if (willQos == 3 || (!willFlag && (willQos != 0 || willRetain)))
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "CONNECT will flags are inconsistent.");
        }
        if (!IsV5 && (flags & 0x40) != 0 && (flags & 0x80) == 0)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "CONNECT password flag without username flag.");
        }
    }

    /// <summary>3.1/3.1.1 CONNECT (no properties): clean session flag clear and a zero-length client id right after the keep alive.</summary>
    static bool IsEmptyClientIdWithoutCleanSession(ArraySegment<byte> body)
    {
        var span = body.AsSpan();
        var flagsIndex = 2 + ((span[0] << 8) | span[1]) + 1;
        var idIndex = flagsIndex + 3;
        return (span[flagsIndex] & 0x02) == 0 && span.Length >= idIndex + 2 && span[idIndex] == 0 && span[idIndex + 1] == 0;
    }

    async ValueTask<bool> HandleConnectAsync(MqttConnectPacket connect)
    {
        var options = _broker.Options;
        if (_broker.AdmitConnect(this) is { } refusal)
        {
            return await RefuseConnectAsync(refusal.Reason, MqttConnectReturnCode.ConnectionRefusedServerUnavailable, serverReference: refusal.ServerReference).ConfigureAwait(false);
        }
        if (IsV5 && connect.AuthenticationMethod is not null)
        {
            return await RefuseConnectAsync(MqttConnectReasonCode.BadAuthenticationMethod, MqttConnectReturnCode.ConnectionRefusedNotAuthorized).ConfigureAwait(false);
        }
        var clientId = connect.ClientId ?? string.Empty;
        string? assigned = null;
        if (clientId.Contains('\0') || clientId.Contains('\uFFFD') || (connect.Username?.Contains('\0') ?? false) || (connect.Username?.Contains('\uFFFD') ?? false))
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "CONNECT string is not valid MQTT UTF-8.");
        }
        if (clientId.Length == 0)
        {
            if (!IsV5 && !connect.CleanSession)
            {
                return await RefuseConnectAsync(MqttConnectReasonCode.ClientIdentifierNotValid, MqttConnectReturnCode.ConnectionRefusedIdentifierRejected).ConfigureAwait(false);
            }
            clientId = assigned = "auto-" + Guid.NewGuid().ToString("N");
        }
        if (clientId.Length > options.MaxClientIdLength)
        {
            return await RefuseConnectAsync(MqttConnectReasonCode.ClientIdentifierNotValid, MqttConnectReturnCode.ConnectionRefusedIdentifierRejected).ConfigureAwait(false);
        }
        if (connect.WillFlag)
        {
            if (connect.WillTopic is null || !TopicValidation.IsValidTopicName(connect.WillTopic))
            {
                return await RefuseConnectAsync(MqttConnectReasonCode.TopicNameInvalid, MqttConnectReturnCode.ConnectionRefusedUnacceptableProtocolVersion, malformed: !IsV5).ConfigureAwait(false);
            }
            if ((int)connect.WillQoS > options.MaximumQoS)
            {
                return await RefuseConnectAsync(MqttConnectReasonCode.QoSNotSupported, MqttConnectReturnCode.ConnectionRefusedServerUnavailable).ConfigureAwait(false);
            }
            if (connect.WillRetain && !options.RetainAvailable)
            {
                return await RefuseConnectAsync(MqttConnectReasonCode.RetainNotSupported, MqttConnectReturnCode.ConnectionRefusedServerUnavailable).ConfigureAwait(false);
            }
        }

        var auth = await _broker.Authenticator.AuthenticateAsync(
            new AuthenticationRequest(clientId, connect.Username, connect.Password, Info.ClientCertificate, Info), CancellationToken.None).ConfigureAwait(false);
        if (!auth.Succeeded)
        {
            _broker.Log.AuthenticationFailed(clientId, connect.Username, Info.RemoteEndPoint?.ToString());
            return auth.Failure == AuthenticationFailure.BadUserNameOrPassword
                ? await RefuseConnectAsync(MqttConnectReasonCode.BadUserNameOrPassword, MqttConnectReturnCode.ConnectionRefusedBadUsernameOrPassword).ConfigureAwait(false)
                : await RefuseConnectAsync(MqttConnectReasonCode.NotAuthorized, MqttConnectReturnCode.ConnectionRefusedNotAuthorized).ConfigureAwait(false);
        }

        // keep alive: MQTT 5 clients are told a lower Server Keep Alive; 3.1.1 clients cannot be told, so theirs is honoured
        ushort serverKeepAlive = 0;
        _keepAlive = connect.KeepAlivePeriod;
        if (IsV5 && options.MaxKeepAlive > 0 && (connect.KeepAlivePeriod == 0 || connect.KeepAlivePeriod > options.MaxKeepAlive))
        {
            serverKeepAlive = (ushort)options.MaxKeepAlive;
            _keepAlive = serverKeepAlive;
        }

        uint sessionExpiry;
        uint grantedExpiry = 0;
        if (IsV5)
        {
            sessionExpiry = Math.Min(connect.SessionExpiryInterval, options.MaxSessionExpiryInterval);
            if (sessionExpiry != connect.SessionExpiryInterval)
            {
                grantedExpiry = sessionExpiry;
            }
            _clientReceiveMaximum = connect.ReceiveMaximum == 0 ? 65535 : connect.ReceiveMaximum;
            _clientMaximumPacketSize = connect.MaximumPacketSize;
            _clientTopicAliasMaximum = connect.TopicAliasMaximum;
        }
        else
        {
            sessionExpiry = connect.CleanSession ? 0 : uint.MaxValue;
            _clientReceiveMaximum = options.MaxInflightOutbound;
        }
        _connectSessionExpiry = sessionExpiry;

        var identity = new ClientIdentity(clientId, auth.Username);
        if (connect.WillFlag)
        {
            var now = _broker.Time.GetUtcNow();
            Will = new Will(
                new MqttMessage
                {
                    Topic = connect.WillTopic!,
                    Payload = connect.WillMessage ?? [],
                    QoS = connect.WillQoS,
                    Retain = connect.WillRetain,
                    ContentType = connect.WillContentType,
                    ResponseTopic = connect.WillResponseTopic,
                    CorrelationData = connect.WillCorrelationData,
                    PayloadFormat = connect.WillPayloadFormatIndicator,
                    UserProperties = connect.WillUserProperties,
                    PublisherClientId = clientId,
                    PublisherUsername = auth.Username,
                    ReceivedAt = now,
                    ExpiresAt = connect.WillMessageExpiryInterval > 0 ? now.AddSeconds(connect.WillMessageExpiryInterval) : null,
                },
                IsV5 ? connect.WillDelayInterval : 0);
        }

        var (session, sessionPresent) = _broker.AttachSession(this, clientId, identity, connect.CleanSession, sessionExpiry);
        Session = session;
        _connected = true;
        OnConnectAccepted();

        var connAck = new MqttConnAckPacket
        {
            IsSessionPresent = sessionPresent,
            ReasonCode = MqttConnectReasonCode.Success,
            ReturnCode = MqttConnectReturnCode.ConnectionAccepted,
        };
        if (IsV5)
        {
            connAck.ReceiveMaximum = (ushort)options.ReceiveMaximum;
            connAck.MaximumPacketSize = (uint)options.MaximumPacketSize;
            connAck.TopicAliasMaximum = (ushort)options.TopicAliasMaximum;
            connAck.MaximumQoS = (MqttQualityOfServiceLevel)options.MaximumQoS;
            connAck.RetainAvailable = options.RetainAvailable;
            connAck.WildcardSubscriptionAvailable = options.WildcardSubscriptionsAvailable;
            connAck.SharedSubscriptionAvailable = options.SharedSubscriptionsAvailable;
            connAck.SubscriptionIdentifiersAvailable = true;
            connAck.AssignedClientIdentifier = assigned;
            connAck.ServerKeepAlive = serverKeepAlive;
            connAck.SessionExpiryInterval = grantedExpiry;
        }
        EnqueueControl(connAck);
        lock (session)
        {
            _resendInflight = session.InflightCount > 0;
        }
        _writerEnabled = true;
        Volatile.Write(ref _signaled, 1);
        StartWriterIfIdle();
        _broker.Log.ClientConnected(clientId, Info.Transport, ProtocolVersion.ToString(), sessionPresent);
        _broker.OnClientConnected(this);
        return true;
    }

    async ValueTask<bool> RefuseConnectAsync(MqttConnectReasonCode reason, MqttConnectReturnCode returnCode, bool malformed = false, string? serverReference = null)
    {
        if (malformed)
        {
            return false;
        }
        var packet = new MqttConnAckPacket { ReasonCode = reason, ReturnCode = returnCode, ServerReference = serverReference };
        var formatter = _broker.Formatters.Rent(_version);
        byte[] bytes;
        try
        {
            bytes = formatter.Encode(packet).Packet.AsSpan().ToArray();
        }
        finally
        {
            _broker.Formatters.Return(_version, formatter);
        }
        await WriteRawAndFlushAsync(bytes).ConfigureAwait(false);
        return false;
    }

    async ValueTask WriteRawAndFlushAsync(byte[] bytes)
    {
        try
        {
            await _transport.Output.WriteAsync(bytes).ConfigureAwait(false);
            _broker.CountSent(bytes.Length);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException)
        {
        }
    }

    // ---------------------------------------------------------------- DISCONNECT

    void HandleDisconnect(MqttDisconnectPacket disconnect, ArraySegment<byte> body)
    {
        _clientSentDisconnect = true;
        if (IsV5)
        {
            // MQTTnet reports an absent Session Expiry Interval as 0; read the property itself to tell them apart
            if (body.Count > 1 && MqttProperties.TryFind(body.AsSpan(), 1, MqttProperties.SessionExpiryInterval, out var expiry))
            {
                if (_connectSessionExpiry == 0 && expiry != 0)
                {
                    // MQTT-3.14.2-2: cannot turn a non-persistent session into a persistent one
                    throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, "Session expiry set on DISCONNECT after CONNECT asked for 0.");
                }
                _broker.UpdateSessionExpiry(Session!, Math.Min(expiry, _broker.Options.MaxSessionExpiryInterval));
            }
            _cleanDisconnect = disconnect.ReasonCode != MqttDisconnectReasonCode.DisconnectWithWillMessage;
        }
        else
        {
            _cleanDisconnect = true;
        }
    }
}
