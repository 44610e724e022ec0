using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// The first packet of a connection: CONNECT's checks on the raw bytes (protocol name and level, flags), admission,
/// validation, authentication, the will, the session, and CONNACK — or a refusal, after which the connection closes.
/// Made for one CONNECT and dropped after it. Memory: the will's payload and properties are the decoder's copies, owned
/// by the <see cref="Will"/>'s message from then on; nothing here keeps the frame's pipe memory.
/// </summary>
internal sealed class ConnectHandler(ConnectionState state, OutboundWriter writer, InboundPipeline inbound)
{
    readonly ConnectionState _state = state;
    readonly MqttBroker _broker = state.Broker;
    readonly OutboundWriter _writer = writer;
    readonly InboundPipeline _inbound = inbound;

    bool IsV5 => _state.IsV5;

    public async ValueTask<bool> HandleConnectFrameAsync(byte header, ArraySegment<byte> body, ReceivedMqttPacket received)
    {
        if ((header & 0x0F) != 0)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "CONNECT with reserved flags.");
        }
        _state.Version = DetectProtocolVersion(body);
        if (_state.Version == MqttProtocolVersion.Unknown)
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
        var connect = (MqttConnectPacket)_state.Connection.Decode(received, MqttControlPacketType.Connect);
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
        if (_broker.AdmitConnect(_state.Connection) is { } refusal)
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
            new AuthenticationRequest(clientId, connect.Username, connect.Password, _state.Info.ClientCertificate, _state.Info), CancellationToken.None).ConfigureAwait(false);
        if (!auth.Succeeded)
        {
            _broker.Log.AuthenticationFailed(clientId, connect.Username, _state.Info.RemoteEndPoint?.ToString());
            return auth.Failure == AuthenticationFailure.BadUserNameOrPassword
                ? await RefuseConnectAsync(MqttConnectReasonCode.BadUserNameOrPassword, MqttConnectReturnCode.ConnectionRefusedBadUsernameOrPassword).ConfigureAwait(false)
                : await RefuseConnectAsync(MqttConnectReasonCode.NotAuthorized, MqttConnectReturnCode.ConnectionRefusedNotAuthorized).ConfigureAwait(false);
        }

        // keep alive: MQTT 5 clients are told a lower Server Keep Alive; 3.1.1 clients cannot be told, so theirs is honoured
        ushort serverKeepAlive = 0;
        _state.KeepAlive = connect.KeepAlivePeriod;
        if (IsV5 && options.MaxKeepAlive > 0 && (connect.KeepAlivePeriod == 0 || connect.KeepAlivePeriod > options.MaxKeepAlive))
        {
            serverKeepAlive = (ushort)options.MaxKeepAlive;
            _state.KeepAlive = serverKeepAlive;
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
            _state.ClientReceiveMaximum = connect.ReceiveMaximum == 0 ? 65535 : connect.ReceiveMaximum;
            _state.ClientMaximumPacketSize = connect.MaximumPacketSize;
            _state.ClientTopicAliasMaximum = connect.TopicAliasMaximum;
        }
        else
        {
            sessionExpiry = connect.CleanSession ? 0 : uint.MaxValue;
            _state.ClientReceiveMaximum = options.MaxInflightOutbound;
        }
        _state.ConnectSessionExpiry = sessionExpiry;

        var identity = new ClientIdentity(clientId, auth.Username);
        if (connect.WillFlag)
        {
            var now = _broker.Time.GetUtcNow();
            _state.Will = new Will(
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

        if (_broker.ClusterSessions is { } cluster && !await ClaimAsync(cluster, clientId, connect.CleanSession).ConfigureAwait(false))
        {
            return await RefuseConnectAsync(MqttConnectReasonCode.ServerUnavailable, MqttConnectReturnCode.ConnectionRefusedServerUnavailable).ConfigureAwait(false);
        }

        var (session, sessionPresent) = _broker.AttachSession(_state.Connection, clientId, identity, connect.CleanSession, sessionExpiry);
        _state.Session = session;
        _state.Connected = true;
        _state.ConnectedAt = _broker.Time.GetUtcNow();
        _inbound.OnConnectAccepted();

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
        _writer.EnqueueControl(connAck);
        _writer.ResendInflight = session.Read(0, static (s, _) => s.InflightCount > 0);
        _writer.Start();
        _broker.Log.ClientConnected(clientId, _state.Info.Transport, _state.Version.ToString(), sessionPresent);
        _broker.OnClientConnected(_state.Connection);
        return true;
    }

    /// <summary>Makes this node the owner of <paramref name="clientId"/> cluster-wide (see <see cref="IClusterSessions.ClaimAsync"/>); false when the cluster could not.</summary>
    async ValueTask<bool> ClaimAsync(IClusterSessions cluster, string clientId, bool cleanStart)
    {
        try
        {
            await cluster.ClaimAsync(clientId, cleanStart, _broker.Stopping).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex)
        {
            _broker.Log.ClaimFailed(clientId, ex);
            return false;
        }
    }

    async ValueTask<bool> RefuseConnectAsync(MqttConnectReasonCode reason, MqttConnectReturnCode returnCode, bool malformed = false, string? serverReference = null)
    {
        if (malformed)
        {
            return false;
        }
        var packet = new MqttConnAckPacket { ReasonCode = reason, ReturnCode = returnCode, ServerReference = serverReference };
        var formatter = _broker.Formatters.Rent(_state.Version);
        byte[] bytes;
        try
        {
            // copied out of the formatter's buffer, which the next renter reuses
            bytes = formatter.Encode(packet).Packet.AsSpan().ToArray();
        }
        finally
        {
            _broker.Formatters.Return(_state.Version, formatter);
        }
        await WriteRawAndFlushAsync(bytes).ConfigureAwait(false);
        return false;
    }

    async ValueTask WriteRawAndFlushAsync(byte[] bytes)
    {
        try
        {
            await _state.Transport.Output.WriteAsync(bytes).ConfigureAwait(false);
            _broker.CountSent(bytes.Length);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException)
        {
        }
    }

}
