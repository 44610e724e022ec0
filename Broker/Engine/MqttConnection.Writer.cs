using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

internal sealed partial class MqttConnection
{
    IMqttPacketFormatter? _encoder;

    int _writerRunning;

    /// <summary>Rounds the writer has made (only the writer counts them): a test's check that an idle writer does not spin.</summary>
    internal long WriteRounds { get; private set; }
    // when the flush now waiting on the socket began; 0 when none waits (see CheckWriteStall)
    long _flushStartedAt;
    bool _writerEnabled;
    TaskCompletionSource? _writerStopped;
    // the store position this pass's bytes may leave only after (0: none): see WriteDeliveries
    long _flushAfterDurable;

    /// <summary>
    /// The writer runs only when there is something to write: a signal starts a pass on the thread pool unless one is
    /// running, and a pass ends when it finds nothing more, so an idle connection holds no writer task at all.
    /// </summary>
    void StartWriterIfIdle()
    {
        if (_writerEnabled && Interlocked.CompareExchange(ref _writerRunning, 1, 0) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c => _ = c.WritePassAsync(), this, preferLocal: false);
        }
    }

    /// <summary>
    /// The only writer of this connection (one pass at a time). Control packets go first, then deliveries within the
    /// client's receive window; everything gathered in one round is flushed once, so a busy subscriber gets many
    /// PUBLISH frames per write.
    /// </summary>
    async Task WritePassAsync()
    {
        var output = _transport.Output;
        try
        {
            while (true)
            {
                WriteRounds++;
                Volatile.Write(ref _signaled, 0);
                var closing = _closeRequested;
                var written = 0L;
                _encoder = null;
                try
                {
                    while (TryDequeueControl(out var packet))
                    {
                        written += Write(output, packet);
                    }
                    if (!closing)
                    {
                        written += WriteDeliveries(output);
                    }
                }
                finally
                {
                    if (_encoder is { } encoder)
                    {
                        _broker.Formatters.Return(_version, encoder);
                        _encoder = null;
                    }
                }
                if (written > 0)
                {
                    await WaitForPacketIdsAsync().ConfigureAwait(false);
                    _broker.CountSent(written);
                    Volatile.Write(ref _flushStartedAt, _broker.Time.GetTimestamp());
                    var flush = await output.FlushAsync().ConfigureAwait(false);
                    Volatile.Write(ref _flushStartedAt, 0);
                    if (flush.IsCompleted || flush.IsCanceled)
                    {
                        StopWriter();
                        return;
                    }
                }
                if (closing)
                {
                    StopWriter();
                    return;
                }
                // nothing more: end the pass, unless a signal came in while we were finishing it. A full fence (not a
                // plain store) so the store cannot pass the read of _signaled: otherwise a signal could find the pass still
                // running while the pass misses the signal, and nobody would write.
                Interlocked.Exchange(ref _writerRunning, 0);
                if (Volatile.Read(ref _signaled) == 0 || Interlocked.CompareExchange(ref _writerRunning, 1, 0) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException or ObjectDisposedException)
        {
            StopWriter();
            RequestClose(null);
        }
    }

    /// <summary>
    /// A QoS 2 PUBLISH leaves only once its packet id is in the store: a receiver keeps a QoS 2 id until PUBREL, so a
    /// broker restarted without the record would give the message a new id (the receiver delivers it twice) and the id to
    /// another message (which the receiver takes for the first one). What the pass wrote stays in the pipe, unflushed,
    /// until then; a failed store lets it go (it has lost durability for everything).
    /// </summary>
    async ValueTask WaitForPacketIdsAsync()
    {
        var position = _flushAfterDurable;
        _flushAfterDurable = 0;
        if (position == 0 || _broker.Store is not { } store || store.IsDurable(position))
        {
            return;
        }
        try
        {
            await store.WaitDurableAsync(position).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // the store failed: the delivery goes out without the promise, as everything else does now
        }
    }

    /// <summary>Disconnects a client that has not taken what was sent for <see cref="BrokerOptions.WriteStallTimeoutSeconds"/>: it stopped reading.</summary>
    void CheckWriteStall(long now)
    {
        var started = Volatile.Read(ref _flushStartedAt);
        var limit = _broker.Options.WriteStallTimeoutSeconds;
        if (started == 0 || _closeRequested || limit == 0 || _broker.Time.GetElapsedTime(started, now).TotalSeconds <= limit)
        {
            return;
        }
        _broker.Log.WriteStalled(ClientId, limit);
        _broker.Metrics.CountWriteStallDisconnect();
        RequestClose(null);
        // the flush itself waits on a socket nobody reads: abort it
        _transport.Output.CancelPendingFlush();
    }

    /// <summary>The writer is done for good (closing, or the peer went away): no pass starts again.</summary>
    void StopWriter()
    {
        _writerEnabled = false;
        _writerStopped?.TrySetResult();
    }

    /// <summary>Lets the last pass (which writes a final DISCONNECT, if any) finish, within <paramref name="timeout"/>.</summary>
    async Task StopWriterAsync(TimeSpan timeout)
    {
        if (!_writerEnabled && Volatile.Read(ref _writerRunning) == 0)
        {
            return;
        }
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _writerStopped = stopped;
        _closeRequested = true;
        Volatile.Write(ref _signaled, 1);
        StartWriterIfIdle();
        if (!_writerEnabled)
        {
            stopped.TrySetResult();
        }
        try
        {
            await stopped.Task.WaitAsync(timeout, _broker.Time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            _transport.Output.CancelPendingFlush();
        }
    }

    long WriteDeliveries(PipeWriter output)
    {
        var session = Session!;
        // the clock is read only for messages that can expire: most never do, and the writer runs often
        DateTimeOffset? clock = null;
        DateTimeOffset Now() => clock ??= _broker.Time.GetUtcNow();
        var batch = _batchList ??= new List<Delivery>();
        batch.Clear();
        List<Delivery>? releases = null;
        lock (session)
        {
            if (session.Connection != this)
            {
                return 0;
            }
            if (_resendInflight)
            {
                _resendInflight = false;
                foreach (var d in session.InflightInSendOrder())
                {
                    if (d.State == DeliveryState.AwaitingPubComp)
                    {
                        (releases ??= new()).Add(d);
                    }
                    else
                    {
                        batch.Add(d);
                    }
                }
            }
            var windowFull = false;
            while (batch.Count < MaxDeliveriesPerBatch && session.TryPeekPending(out var next))
            {
                if (next.QoS > 0 && session.InflightCount >= _clientReceiveMaximum)
                {
                    windowFull = true;
                    break;
                }
                session.DequeuePending();
                if (next.Message.ExpiresAt is not null && next.Message.IsExpired(Now()))
                {
                    _broker.CountDropped(DropReason.Expired);
                    _broker.RecordCompleted(session, next);
                    continue;
                }
                if (next.QoS > 0)
                {
                    next.PacketId = session.NextPacketId();
                    next.State = next.QoS == MqttQualityOfServiceLevel.AtLeastOnce ? DeliveryState.AwaitingPubAck : DeliveryState.AwaitingPubRec;
                    session.Inflight.Add(next.PacketId, next);
                    session.StampSendOrder(next);
                    _broker.RecordInflight(session, next);
                    if (next.QoS == MqttQualityOfServiceLevel.ExactlyOnce && next.DeliveryId != 0)
                    {
                        _flushAfterDurable = _broker.Store?.Position ?? 0;
                    }
                }
                batch.Add(next);
            }
            if (session.PendingCount > 0 && !windowFull)
            {
                // more is waiting than one batch holds: come round again after this flush. Not while the client's
                // window is full: its next acknowledgement signals the writer, and coming round before that would spin
                Volatile.Write(ref _signaled, 1);
            }
        }

        var written = 0L;
        if (releases is not null)
        {
            foreach (var d in releases)
            {
                written += Write(output, new MqttPubRelPacket { PacketIdentifier = d.PacketId });
            }
        }
        foreach (var d in batch)
        {
            var length = TryWriteShared(output, d) ?? Write(output, BuildPublish(d, d.Message.ExpiresAt is null ? default : Now()), _clientMaximumPacketSize);
            if (length < 0)
            {
                // larger than the client accepts: MQTT 5 says discard it as if delivered
                _broker.CountDropped(DropReason.TooLargeForClient);
                if (d.QoS > 0)
                {
                    lock (session)
                    {
                        session.Inflight.Remove(d.PacketId);
                        _broker.RecordCompleted(session, d);
                    }
                }
                continue;
            }
            d.Sent = true;
            written += length;
            _broker.CountPublishSent(d.QoS);
        }
        batch.Clear();
        return written;
    }

    /// <summary>
    /// Writes a plain QoS 0 delivery from the message's once-encoded bytes (see <see cref="MqttMessage.EncodedQos0V5"/>).
    /// Null when this delivery needs bytes of its own (QoS &gt; 0, retain flag, subscription ids, topic aliases, expiry).
    /// </summary>
    long? TryWriteShared(PipeWriter output, Delivery d)
    {
        var m = d.Message;
        if (d.QoS != MqttQualityOfServiceLevel.AtMostOnce || d.Retain || d.SubscriptionIds is not null || m.ExpiresAt is not null ||
            _clientTopicAliasMaximum > 0 || _version is not (MqttProtocolVersion.V311 or MqttProtocolVersion.V500))
        {
            return null;
        }
        var v5 = _version == MqttProtocolVersion.V500;
        var bytes = v5 ? m.EncodedQos0V5 : m.EncodedQos0V311;
        if (bytes is null)
        {
            var encoder = _encoder ??= _broker.Formatters.Rent(_version);
            var buffer = encoder.Encode(BuildPublish(d, default));
            bytes = new byte[buffer.Length];
            buffer.Packet.AsSpan().CopyTo(bytes);
            System.Buffers.BuffersExtensions.CopyTo(buffer.Payload, bytes.AsSpan(buffer.Packet.Count));
            if (v5)
            {
                m.EncodedQos0V5 = bytes;
            }
            else
            {
                m.EncodedQos0V311 = bytes;
            }
        }
        if (_clientMaximumPacketSize > 0 && bytes.Length > _clientMaximumPacketSize)
        {
            return -1;
        }
        System.Buffers.BuffersExtensions.Write(output, bytes);
        return bytes.Length;
    }

    MqttPublishPacket BuildPublish(Delivery d, DateTimeOffset now)
    {
        var m = d.Message;
        var packet = new MqttPublishPacket
        {
            Topic = m.Topic,
            Payload = new System.Buffers.ReadOnlySequence<byte>(m.Payload),
            QualityOfServiceLevel = d.QoS,
            Retain = d.Retain,
            Dup = d.Sent && d.QoS > 0,
            PacketIdentifier = d.QoS > 0 ? d.PacketId : (ushort)0,
        };
        if (IsV5)
        {
            packet.ContentType = m.ContentType;
            packet.ResponseTopic = m.ResponseTopic;
            packet.CorrelationData = m.CorrelationData;
            packet.PayloadFormatIndicator = m.PayloadFormat;
            packet.UserProperties = m.UserProperties as List<MqttUserProperty> ?? m.UserProperties?.ToList();
            packet.SubscriptionIdentifiers = d.SubscriptionIds;
            packet.MessageExpiryInterval = m.ExpiresAt is null ? 0 : m.RemainingExpirySeconds(now);
            if (_clientTopicAliasMaximum > 0)
            {
                _outboundAliases ??= new Dictionary<string, ushort>(StringComparer.Ordinal);
                if (_outboundAliases.TryGetValue(m.Topic, out var alias))
                {
                    packet.Topic = string.Empty;
                    packet.TopicAlias = alias;
                }
                else if (_outboundAliases.Count < _clientTopicAliasMaximum)
                {
                    alias = (ushort)(_outboundAliases.Count + 1);
                    _outboundAliases[m.Topic] = alias;
                    packet.TopicAlias = alias;
                }
            }
        }
        return packet;
    }

    /// <summary>Encodes straight into the pipe. Returns the bytes written, or -1 when the packet exceeds <paramref name="limit"/>.</summary>
    long Write(PipeWriter output, MqttPacket packet, uint limit = 0)
    {
        // borrowed for one write pass only; an idle connection holds no encoder
        var encoder = _encoder ??= _broker.Formatters.Rent(_version);
        var buffer = encoder.Encode(packet);
        var length = buffer.Length;
        if (limit > 0 && length > limit)
        {
            return -1;
        }
        var span = output.GetSpan(length);
        buffer.Packet.AsSpan().CopyTo(span);
        if (!buffer.Payload.IsEmpty)
        {
            System.Buffers.BuffersExtensions.CopyTo(buffer.Payload, span[buffer.Packet.Count..]);
        }
        output.Advance(length);
        return length;
    }
}
