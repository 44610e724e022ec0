using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// The inbound publish pipeline of one connection: validate → rate limit → authorize → accept → route → acknowledge,
/// routed and acknowledged in arrival order (<see cref="InboundQueue"/> holds those whose accept stage answers late).
/// Memory: a PUBLISH arrives as a view of the pipe's memory, valid only until the reader advances (see
/// <see cref="Framing.MqttFrameReader"/>); <see cref="Framing.PublishDecoder"/> (or MQTTnet's decoder) copies the payload out of it, and the
/// <see cref="MqttMessage"/> made here owns that copy for as long as the message lives (queues, retained, the store).
/// </summary>
internal sealed class InboundPipeline(ConnectionState state)
{
    readonly ConnectionState _state = state;
    readonly MqttBroker _broker = state.Broker;
    // QoS 1 publishes received and not yet acknowledged: with the QoS 2 ids held, bounded by our Receive Maximum
    int _qos1Pending;
    Dictionary<ushort, string>? _inboundAliases;
    PublishLimiter? _publishLimiter;
    // made on first use: see EnqueueInbound
    InboundQueue? _inboundQueue;

    /// <summary>The last topic name this connection published to (see <see cref="Framing.PublishDecoder"/>).</summary>
    public Framing.TopicNameCache TopicNames { get; } = new();

    Session? Session => _state.Session;
    bool IsV5 => _state.IsV5;
    string? ClientId => _state.Session?.ClientId;

    /// <summary>The pump completing publishes whose accept stage answered late; null when none ever did.</summary>
    public Task? Pump => _inboundQueue?.Pump;

    /// <summary>CONNECT was accepted: the per-client publish limits start now.</summary>
    public void OnConnectAccepted() => _publishLimiter = PublishLimiter.Create(_broker.Options, _broker.Time);

    DateTimeOffset BatchNow() => _state.Connection.BatchNow();

    void RequestClose(MqttDisconnectReasonCode? reason, bool lingerForPeer = false) => _state.Connection.RequestClose(reason, lingerForPeer);

    void SendAckWhenDurable(MqttPacket ack) => _state.Connection.SendAckWhenDurable(ack);

    public ValueTask<bool> HandlePublishAsync(MqttPublishPacket publish, ArraySegment<byte> body)
    {
        var options = _broker.Options;
        var qos = publish.QualityOfServiceLevel;
        var session = Session!;
        if ((int)qos > options.MaximumQoS)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.QoSNotSupported, $"PUBLISH QoS {(int)qos} above the maximum {options.MaximumQoS}.");
        }
        if (publish.Retain && !options.RetainAvailable)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.RetainNotSupported, "Retain is not available.");
        }
        if (qos > 0 && publish.PacketIdentifier == 0)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "PUBLISH QoS > 0 without packet identifier.");
        }
        // the topic name is the first field: check its raw bytes strictly (MQTTnet decodes leniently)
        var rawTopicLength = (body[0] << 8) | body[1];
        if (!TopicValidation.IsValidMqttUtf8(body.AsSpan(2, rawTopicLength)))
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "PUBLISH topic is not valid MQTT UTF-8.");
        }
        if (IsV5 && publish.TopicAlias == 0)
        {
            // MQTTnet reports an absent alias as 0; a Topic Alias property of 0 is a protocol error (MQTT-3.3.2-8)
            var propertiesOffset = 2 + rawTopicLength + (qos > 0 ? 2 : 0);
            if (body.Count > propertiesOffset + 1 && body[propertiesOffset] != 0 &&
                MqttProperties.TryFind(body.AsSpan(), propertiesOffset, MqttProperties.TopicAlias, out var alias) && alias == 0)
            {
                throw new MqttProtocolError(MqttDisconnectReasonCode.TopicAliasInvalid, "Topic alias 0 is not allowed.");
            }
        }
        var topic = ResolveTopic(publish);

        if (qos > 0 && IsV5 && Volatile.Read(ref _qos1Pending) + InboundQos2Count(session) >= options.ReceiveMaximum)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.ReceiveMaximumExceeded, $"More than {options.ReceiveMaximum} unacknowledged QoS 1/2 publishes.");
        }
        InboundQos2Claim? claim = null;
        InboundQos2Claim? firstCopy = null;
        if (qos == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            var receipt = session.ReceiveQos2(publish.PacketIdentifier, out claim);
            if (receipt == InboundQos2Receipt.Duplicate)
            {
                // exactly once: a resent QoS 2 PUBLISH is acknowledged again but never routed again
                return EnqueueInbound(new InboundEntry(null, qos, publish.PacketIdentifier, null, AcceptResult.Accepted, 0));
            }
            if (receipt == InboundQos2Receipt.Undecided)
            {
                // the first copy is still in the accept stage (on a connection this one took over): wait for its outcome
                (firstCopy, claim) = (claim, null);
            }
        }
        else if (qos == MqttQualityOfServiceLevel.AtLeastOnce)
        {
            Interlocked.Increment(ref _qos1Pending);
        }
        _broker.CountPublishReceived(qos);
        if (_publishLimiter is not null && CheckPublishLimit(qos, publish.PacketIdentifier, publish.Payload.Length, claim) is { } limited)
        {
            return limited;
        }

        if (!_broker.Authorizer.CanPublish(session.Identity, topic))
        {
            _broker.Log.PublishDenied(session.ClientId, topic);
            // 3.1.1 has no way to say no: the message is dropped and acknowledged as usual
            return EnqueueInbound(new InboundEntry(null, qos, publish.PacketIdentifier, null, AcceptResult.Accepted, IsV5 ? (byte)0x87 : (byte)0, claim));
        }

        var now = BatchNow();
        var message = new MqttMessage
        {
            Topic = topic,
            // the message owns its payload: the decoder copied it out of the frame (PublishDecoder, MQTTnet's ReadRemainingData), whose memory is
            // the pipe's and is reused once the reader advances (see MqttFrameReader)
            Payload = publish.Payload.IsSingleSegment ? publish.Payload.First : System.Buffers.BuffersExtensions.ToArray(publish.Payload),
            QoS = qos,
            Retain = publish.Retain,
            ContentType = publish.ContentType,
            ResponseTopic = publish.ResponseTopic,
            CorrelationData = publish.CorrelationData,
            PayloadFormat = publish.PayloadFormatIndicator,
            UserProperties = publish.UserProperties,
            PublisherClientId = session.ClientId,
            PublisherUsername = session.Identity.Username,
            ReceivedAt = now,
            ExpiresAt = publish.MessageExpiryInterval > 0 ? now.AddSeconds(publish.MessageExpiryInterval) : null,
        };
        if (firstCopy is not null)
        {
            var resend = new InboundEntry(message, qos, publish.PacketIdentifier, null, AcceptResult.Accepted, 0);
            resend.Pending = AcceptAfterFirstCopyAsync(firstCopy, resend);
            return EnqueueInbound(resend);
        }
        var accept = _broker.AcceptAsync(message);
        return accept.IsCompletedSuccessfully
            ? EnqueueInbound(new InboundEntry(message, qos, publish.PacketIdentifier, null, accept.Result, 0, claim))
            : EnqueueInbound(new InboundEntry(message, qos, publish.PacketIdentifier, _broker.MeasureAcceptAsync(accept), AcceptResult.Accepted, 0, claim));
    }

    /// <summary>
    /// The accept stage of a QoS 2 resend whose first copy was still undecided: acknowledged only if that copy was routed;
    /// otherwise (refused, or given up with its connection) this copy is a new publish and goes through the accept stage.
    /// </summary>
    async Task<AcceptResult> AcceptAfterFirstCopyAsync(InboundQos2Claim firstCopy, InboundEntry resend)
    {
        var session = Session!;
        while (true)
        {
            if (await firstCopy.OutcomeAsync().ConfigureAwait(false))
            {
                resend.Message = null;
                return AcceptResult.Accepted;
            }
            var receipt = session.ReceiveQos2(resend.PacketId, out var claim);
            switch (receipt)
            {
                case InboundQos2Receipt.Duplicate:
                    resend.Message = null;
                    return AcceptResult.Accepted;
                case InboundQos2Receipt.Undecided:
                    firstCopy = claim; // yet another copy got there first
                    continue;
                default:
                    resend.Claim = claim;
                    return await _broker.MeasureAcceptAsync(_broker.AcceptAsync(resend.Message!)).ConfigureAwait(false);
            }
        }
    }

    static int InboundQos2Count(Session session) => session.Read(0, static (s, _) => s.InboundQos2Count);

    string ResolveTopic(MqttPublishPacket publish)
    {
        var topic = publish.Topic ?? string.Empty;
        if (publish.TopicAlias != 0)
        {
            if (!IsV5 || publish.TopicAlias > _broker.Options.TopicAliasMaximum)
            {
                throw new MqttProtocolError(MqttDisconnectReasonCode.TopicAliasInvalid, $"Topic alias {publish.TopicAlias} is out of range 1..{_broker.Options.TopicAliasMaximum}.");
            }
            _inboundAliases ??= new Dictionary<ushort, string>();
            if (topic.Length == 0)
            {
                if (!_inboundAliases.TryGetValue(publish.TopicAlias, out var aliased))
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, $"Topic alias {publish.TopicAlias} is not defined.");
                }
                return aliased;
            }
            if (!TopicValidation.IsValidTopicName(topic))
            {
                throw new MqttProtocolError(MqttDisconnectReasonCode.TopicNameInvalid, $"Topic name '{topic}' is not valid.");
            }
            _inboundAliases[publish.TopicAlias] = topic;
            return topic;
        }
        if (!TopicValidation.IsValidTopicName(topic))
        {
            throw new MqttProtocolError(IsV5 ? MqttDisconnectReasonCode.TopicNameInvalid : MqttDisconnectReasonCode.MalformedPacket, $"Topic name '{topic}' is not valid.");
        }
        return topic;
    }

    ValueTask<bool> EnqueueInbound(InboundEntry entry)
    {
        var inbound = _inboundQueue;
        if (inbound is null)
        {
            if (entry.Pending is null)
            {
                // nothing ever waited in the accept stage on this connection
                Complete(entry, entry.Result);
                return ValueTask.FromResult(true);
            }
            // only the reader creates it; the pump starts after it exists
            inbound = _inboundQueue = new InboundQueue(this, _state);
        }
        return inbound.Enqueue(entry);
    }

    /// <summary>Routes an accepted message and sends its acknowledgement. Called in arrival order.</summary>
    public void Complete(InboundEntry entry, AcceptResult result)
    {
        var accepted = result == AcceptResult.Accepted && entry.DeniedReason == 0;
        if (entry.Claim is { } claim)
        {
            if (!DecideQos2(entry, claim, accepted))
            {
                return; // given up when the connection closed: the client resends it
            }
        }
        else if (entry.Message is { } message && accepted)
        {
            _broker.Route(message, _state.Connection);
        }
        var reason = entry.DeniedReason != 0 ? entry.DeniedReason : result switch
        {
            AcceptResult.Accepted => (byte)0,
            AcceptResult.QuotaExceeded => (byte)0x97,
            // everything else, a busy accept stage included, is Unspecified error: 0x89 (server busy) is not a PUBACK/PUBREC
            // reason in MQTT 5
            _ => (byte)0x80,
        };
        if (reason >= 0x80 && !IsV5 && entry.DeniedReason == 0 && entry.QoS > 0)
        {
            // 3.1.1 cannot refuse a publish: closing without an acknowledgement makes the client resend later
            RequestClose(null);
            return;
        }
        switch (entry.QoS)
        {
            case MqttQualityOfServiceLevel.AtLeastOnce:
                Interlocked.Decrement(ref _qos1Pending);
                SendAckWhenDurable(new MqttPubAckPacket { PacketIdentifier = entry.PacketId, ReasonCode = (MqttPubAckReasonCode)reason });
                break;
            case MqttQualityOfServiceLevel.ExactlyOnce:
                SendAckWhenDurable(new MqttPubRecPacket { PacketIdentifier = entry.PacketId, ReasonCode = (MqttPubRecReasonCode)reason });
                break;
        }
    }

    /// <summary>
    /// Decides a QoS 2 publish's claim on its packet id: an accepted one is routed (here) and its id held until PUBREL,
    /// recorded after the routing so that a crash between the two can only repeat the message, never lose it; anything
    /// else frees the id for a resend. False when the claim was given up first (the connection closed).
    /// </summary>
    bool DecideQos2(InboundEntry entry, InboundQos2Claim claim, bool accepted)
    {
        var session = Session!;
        if (!accepted)
        {
            RefuseQos2(entry.PacketId, claim);
            return true;
        }
        if (!claim.TryBeginRouting())
        {
            return false;
        }
        if (entry.Message is { } message)
        {
            _broker.Route(message, _state.Connection);
        }
        session.Qos2Routed(entry.PacketId, claim, _broker);
        claim.EndRouting();
        return true;
    }

    /// <inheritdoc cref="Session.RefuseQos2"/>
    void RefuseQos2(ushort packetId, InboundQos2Claim claim) => Session!.RefuseQos2(packetId, claim);

    /// <summary>
    /// The connection is closing: publishes whose accept stage has not answered are given up. A QoS 2 one frees its
    /// packet id, so the client's resend after reconnecting is routed instead of being taken for a duplicate.
    /// </summary>
    public void AbandonUndecidedInbound()
    {
        var inbound = _inboundQueue;
        if (inbound is null || Session is null)
        {
            return;
        }
        foreach (var entry in inbound.UndecidedQos2())
        {
            RefuseQos2(entry.PacketId, entry.Claim!);
        }
    }

    /// <summary>Applies the per-client publish limits; null when the publish may go on, else what HandlePublishAsync returns.</summary>
    ValueTask<bool>? CheckPublishLimit(MqttQualityOfServiceLevel qos, ushort packetId, long payloadBytes, InboundQos2Claim? claim)
    {
        var decision = _publishLimiter!.Check(payloadBytes);
        if (decision == PublishLimitDecision.Allowed)
        {
            return null;
        }
        _broker.Metrics.CountPublishRefused(_publishLimiter.LastRefusalWasBytes ? PublishRefusal.ByteRate : PublishRefusal.MessageRate);
        if (decision == PublishLimitDecision.Disconnect)
        {
            _broker.Metrics.CountLimitDisconnect();
            _broker.Log.PublishLimitExceeded(ClientId);
            RequestClose(MqttDisconnectReasonCode.QuotaExceeded, lingerForPeer: true);
            if (claim is not null)
            {
                // never acknowledged: the resend after reconnecting must be routed, not taken for a duplicate
                RefuseQos2(packetId, claim);
            }
            return ValueTask.FromResult(false);
        }
        if (qos == MqttQualityOfServiceLevel.AtMostOnce)
        {
            return ValueTask.FromResult(true); // nothing to acknowledge: dropped
        }
        // acknowledged in order with 0x97; a 3.1.1 client cannot be refused and is closed unacknowledged (it resends later)
        return EnqueueInbound(new InboundEntry(null, qos, packetId, null, AcceptResult.QuotaExceeded, 0, claim));
    }
}
