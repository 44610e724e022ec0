using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// The output producer of one connection (Kestrel's pattern): the only writer of its pipe. Control packets (CONNACK,
/// acknowledgements, DISCONNECT) have their own lane and always go first; then deliveries are taken from the session
/// within the client's receive window, encoded by <see cref="OutboundEncoder"/>, and everything of one round is flushed
/// once, so a busy subscriber gets many PUBLISH frames per write.
/// </summary>
internal sealed class OutboundWriter
{
    const int MaxDeliveriesPerBatch = 256;

    readonly ConnectionState _state;
    readonly MqttBroker _broker;
    // a mutable struct used in place: not readonly (see OutboundEncoder)
    OutboundEncoder _encoder;
    // control lane: a plain queue under its own lock (a ConcurrentQueue preallocates a segment per connection)
    readonly Queue<MqttPacket> _control = new();
    // made on first use (an idle connection never needs it): see WriteDeliveries
    List<Delivery>? _batchList;

    int _signaled;
    int _writerRunning;
    bool _writerEnabled;
    TaskCompletionSource? _writerStopped;
    // when the flush now waiting on the socket began; 0 when none waits (see CheckWriteStall)
    long _flushStartedAt;
    // the store position this pass's bytes may leave only after (0: none): see WriteDeliveries
    long _flushAfterDurable;

    public OutboundWriter(ConnectionState state)
    {
        _state = state;
        _broker = state.Broker;
        _encoder = new OutboundEncoder(state);
    }

    /// <summary>Rounds the writer has made (only the writer counts them): a test's check that an idle writer does not spin.</summary>
    public long WriteRounds { get; private set; }

    /// <summary>Set when CONNECT resumes a session with deliveries in flight: the first pass sends them again.</summary>
    public bool ResendInflight { get; set; }

    public void EnqueueControl(MqttPacket packet)
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

    /// <summary>Wakes the writer: there is something to write (a control packet, a delivery, room in the window).</summary>
    public void Signal()
    {
        if (Interlocked.Exchange(ref _signaled, 1) == 0)
        {
            StartWriterIfIdle();
        }
    }

    /// <summary>CONNECT was accepted (its CONNACK is queued): from now on signals start passes.</summary>
    public void Start()
    {
        _writerEnabled = true;
        Volatile.Write(ref _signaled, 1);
        StartWriterIfIdle();
    }

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
    /// client's receive window; everything gathered in one round is flushed once.
    /// </summary>
    async Task WritePassAsync()
    {
        var output = _state.Transport.Output;
        try
        {
            while (true)
            {
                WriteRounds++;
                Volatile.Write(ref _signaled, 0);
                var closing = _state.CloseRequested;
                var written = 0L;
                try
                {
                    while (TryDequeueControl(out var packet))
                    {
                        written += _encoder.Write(output, packet);
                    }
                    if (!closing)
                    {
                        written += WriteDeliveries(output);
                    }
                }
                finally
                {
                    _encoder.EndPass();
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
            _state.Connection.RequestClose(null);
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
    public void CheckWriteStall(long now)
    {
        var started = Volatile.Read(ref _flushStartedAt);
        var limit = _broker.Options.WriteStallTimeoutSeconds;
        if (started == 0 || _state.CloseRequested || limit == 0 || _broker.Time.GetElapsedTime(started, now).TotalSeconds <= limit)
        {
            return;
        }
        _broker.Log.WriteStalled(_state.Session?.ClientId, limit);
        _broker.Metrics.CountWriteStallDisconnect();
        _state.Connection.RequestClose(null);
        // the flush itself waits on a socket nobody reads: abort it
        _state.Transport.Output.CancelPendingFlush();
    }

    /// <summary>The writer is done for good (closing, or the peer went away): no pass starts again.</summary>
    void StopWriter()
    {
        _writerEnabled = false;
        _writerStopped?.TrySetResult();
    }

    /// <summary>Lets the last pass (which writes a final DISCONNECT, if any) finish, within <paramref name="timeout"/>.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (!_writerEnabled && Volatile.Read(ref _writerRunning) == 0)
        {
            return;
        }
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _writerStopped = stopped;
        _state.CloseRequested = true;
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
            _state.Transport.Output.CancelPendingFlush();
        }
    }

    long WriteDeliveries(PipeWriter output)
    {
        var session = _state.Session!;
        // the clock is read only for messages that can expire: most never do, and the writer runs often
        DateTimeOffset? clock = null;
        DateTimeOffset Now() => clock ??= _broker.Time.GetUtcNow();
        var batch = _batchList ??= new List<Delivery>();
        batch.Clear();
        List<Delivery>? releases = null;
        var resend = ResendInflight;
        if (!session.TakeForSending(_state.Connection, resend, _state.ClientReceiveMaximum, MaxDeliveriesPerBatch, batch, ref releases, ref clock,
                ref _flushAfterDurable, _broker, out var moreQueued))
        {
            return 0;
        }
        if (resend)
        {
            ResendInflight = false;
        }
        if (moreQueued)
        {
            // more is waiting than one batch holds: come round again after this flush
            Volatile.Write(ref _signaled, 1);
        }

        var written = 0L;
        if (releases is not null)
        {
            foreach (var d in releases)
            {
                written += _encoder.Write(output, new MqttPubRelPacket { PacketIdentifier = d.PacketId });
            }
        }
        foreach (var d in batch)
        {
            var length = _encoder.TryWriteShared(output, d) ?? _encoder.TryWriteDirect(output, d) ??
                         _encoder.Write(output, _encoder.BuildPublish(d, d.Message.ExpiresAt is null ? default : Now()), _state.ClientMaximumPacketSize);
            if (length < 0)
            {
                // larger than the client accepts: MQTT 5 says discard it as if delivered
                _broker.CountDropped(DropReason.TooLargeForClient);
                if (d.QoS > 0)
                {
                    session.DropInflight(d, _broker);
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
}
