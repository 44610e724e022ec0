using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using IotRealtime.Device.Simulator.Connections;

namespace IotRealtime.Device.Simulator.Fleet.Raw;

/// <summary>
/// The fleet's devices as plain MQTT 3.1.1 sockets driven by one thread: epoll for readiness, one <see cref="TimerWheel"/>
/// for connect timeouts, publish times, keep-alive and backoff, and per device a few array slots (no Socket, Task or
/// timer). A device rents a buffer only while a packet is being written or a partial packet waits for its rest.
/// It does what <see cref="FleetDevice"/> does over TCP: paced connect, command subscription, telemetry at QoS 0/1
/// with a sequence number reused until acknowledged, and reconnect with backoff.
/// </summary>
public sealed unsafe class RawFleet
{
    const long TickMs = 10;
    const int WheelSlots = 8192;
    const int MaxEvents = 1024;
    const ushort SubscribeId = 1;
    const byte EverConnected = 1, InFlight = 2;

    readonly FleetOptions _options;
    readonly FleetCounters _counters;
    readonly TokenBucket _bucket;
    readonly ReconnectBackoff _backoff;
    readonly TelemetryPayload _payload;
    readonly TimeProvider _time;
    readonly IPEndPoint[] _targets;
    readonly SourceAddressPlan _sources;
    readonly int _first;
    readonly int _count;

    readonly int[] _fd;
    readonly RawState[] _state;
    readonly long[] _due;
    readonly long[] _opStart;
    readonly long[] _lastSend;
    readonly long[] _nextPublish;
    readonly long[] _sent;
    readonly byte[] _flags;
    readonly byte[] _attempt;
    readonly byte[]?[] _partial;
    readonly int[] _partialLength;

    readonly Queue<int> _connectQueue = new();
    readonly byte[] _receive = new byte[64 * 1024];
    readonly Random _random = new();
    readonly Action<int> _onDue;
    TimerWheel _wheel = null!;
    int _epoll = -1;
    int _done;
    int _inFlight;
    bool _stopping;
    long _now;

    public RawFleet(FleetOptions options, FleetCounters counters, TokenBucket bucket, ReconnectBackoff backoff, TelemetryPayload payload,
        SourceAddressPlan sources, TimeProvider time)
    {
        _options = options;
        _counters = counters;
        _bucket = bucket;
        _backoff = backoff;
        _payload = payload;
        _sources = sources;
        _time = time;
        _targets = [.. options.Brokers.Select(b => new IPEndPoint(IPAddress.Parse(b.Host), b.Port))];
        (_first, _count) = options.LocalDevices;
        _fd = new int[_count];
        Array.Fill(_fd, -1);
        _state = new RawState[_count];
        _due = new long[_count];
        Array.Fill(_due, long.MaxValue);
        _opStart = new long[_count];
        _lastSend = new long[_count];
        _nextPublish = new long[_count];
        _sent = new long[_count];
        _flags = new byte[_count];
        _attempt = new byte[_count];
        _partial = new byte[]?[_count];
        _partialLength = new int[_count];
        _onDue = OnDue;
    }

    /// <summary>Messages acknowledged (QoS 1) or written (QoS 0) per local device; read once the run has ended.</summary>
    public long[] Sent => (long[])_sent.Clone();

    /// <summary>Runs the fleet on a thread of its own until every device is done or <paramref name="stop"/> fires.</summary>
    public Task RunAsync(CancellationToken stop)
    {
        var completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Loop(stop);
                completion.SetResult();
            }
            catch (Exception e)
            {
                completion.SetException(e);
            }
        })
        { IsBackground = true, Name = "raw-fleet" };
        thread.Start();
        return completion.Task;
    }

    long NowMs() => _time.GetTimestamp() * 1000 / _time.TimestampFrequency;

    void Loop(CancellationToken stop)
    {
        _epoll = Libc.EpollCreate1(Libc.SockCloexec);
        if (_epoll < 0) throw new InvalidOperationException($"epoll_create1: {Libc.Describe(Libc.Errno)}");
        _now = NowMs();
        _wheel = new TimerWheel(WheelSlots, TickMs, _now);
        for (var d = 0; d < _count; d++)
        {
            _state[d] = RawState.Queued;
            _connectQueue.Enqueue(d);
        }

        var events = new byte[Libc.EpollEventSize * MaxEvents];
        // A QoS 1 publish in flight when the run ends is let finish, as the MQTTnet devices do, for at most this long.
        var stopDeadline = long.MaxValue;
        try
        {
            while (_done < _count)
            {
                _now = NowMs();
                if (stop.IsCancellationRequested && !_stopping)
                {
                    _stopping = true;
                    stopDeadline = _now + (long)(Math.Min(5, _options.ConnectTimeoutSeconds) * 1000);
                }

                if (_stopping && (_inFlight == 0 || _now >= stopDeadline)) break;
                if (!_stopping)
                {
                    _wheel.Advance(_now, _due, _onDue);
                    StartConnects();
                }

                int n;
                fixed (byte* p = events) n = Libc.EpollWait(_epoll, p, MaxEvents, (int)TickMs);
                if (n < 0)
                {
                    var errno = Libc.Errno;
                    if (errno == Libc.EIntr) continue;
                    throw new InvalidOperationException($"epoll_wait: {Libc.Describe(errno)}");
                }

                _now = NowMs();
                for (var i = 0; i < n; i++) OnEvent((int)Libc.DataAt(events, i), Libc.EventsAt(events, i));
            }
        }
        finally
        {
            Shutdown();
            Libc.Close(_epoll);
        }
    }

    void StartConnects()
    {
        while (_connectQueue.Count > 0 && _bucket.TryTake(out _))
        {
            var d = _connectQueue.Dequeue();
            if (_state[d] == RawState.Queued) StartConnect(d);
        }
    }

    void StartConnect(int d)
    {
        _counters.ConnectAttempt();
        _opStart[d] = _time.GetTimestamp();
        var fd = RawSocket.Open(_sources.For(d), out var step);
        if (fd < 0)
        {
            _counters.ConnectFailed($"connect: {step}: {Libc.Describe(-fd)}");
            Backoff(d);
            return;
        }

        _fd[d] = fd;
        _state[d] = RawState.Connecting;
        if (RawSocket.StartConnect(fd, _targets[(_first + d) % _targets.Length]) is var errno && errno != 0)
        {
            FailConnect(d, $"connect: {Libc.Describe(errno)}");
            return;
        }

        Libc.EpollControl(_epoll, Libc.EpollCtlAdd, fd, Libc.EpollOut, (ulong)d);
        Schedule(d, _now + (long)(_options.ConnectTimeoutSeconds * 1000));
    }

    void OnEvent(int d, uint events)
    {
        if (_fd[d] < 0) return;
        if (_state[d] == RawState.Connecting)
        {
            Libc.GetInt(_fd[d], Libc.SolSocket, Libc.SoError, out var error);
            if (error != 0 || (events & (Libc.EpollErr | Libc.EpollHup)) != 0)
            {
                FailConnect(d, $"connect: {(error != 0 ? Libc.Describe(error) : "closed")}");
                return;
            }

            var o = _options;
            var clientId = o.ClientId(_first + d);
            var will = o.WillTopicPattern is null ? null : string.Format(CultureInfo.InvariantCulture, o.WillTopicPattern, clientId);
            var connect = ConnectPacket.Build(clientId, (ushort)o.KeepAliveSeconds, !o.PersistentSession, o.Username, o.Username is null ? null : o.Password ?? "",
                will, will is null ? default : Encoding.UTF8.GetBytes($"{{\"id\":\"{clientId}\",\"online\":false}}"), Math.Min(o.Qos, 1));
            if (!Send(d, connect)) return;
            _state[d] = RawState.AwaitConnAck;
            Libc.EpollControl(_epoll, Libc.EpollCtlMod, _fd[d], Libc.EpollIn | Libc.EpollRdHup, (ulong)d);
            return;
        }

        Read(d);
    }

    void Read(int d)
    {
        while (_fd[d] >= 0)
        {
            nint read;
            fixed (byte* p = _receive) read = Libc.Recv(_fd[d], p, (nuint)_receive.Length, 0);
            if (read > 0)
            {
                Consume(d, _receive.AsSpan(0, (int)read));
                if (read < _receive.Length) return;
                continue;
            }

            var errno = read < 0 ? Libc.Errno : 0;
            if (read < 0 && errno == Libc.EAgain) return;
            if (read < 0 && errno == Libc.EIntr) continue;
            Lose(d, read == 0 ? "connection lost: closed" : $"connection lost: {Libc.Describe(errno)}");
            return;
        }
    }

    /// <summary>Handles the whole packets in <paramref name="bytes"/> (after any partial one kept from before) and keeps the rest.</summary>
    void Consume(int d, ReadOnlySpan<byte> bytes)
    {
        byte[]? held = _partial[d];
        if (held is not null)
        {
            var length = _partialLength[d];
            if (length + bytes.Length > held.Length)
            {
                var larger = ArrayPool<byte>.Shared.Rent(length + bytes.Length);
                held.AsSpan(0, length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(held);
                held = larger;
            }

            bytes.CopyTo(held.AsSpan(length));
            _partial[d] = null;
            var rest = Frames(d, held.AsSpan(0, length + bytes.Length));
            Keep(d, rest);
            ArrayPool<byte>.Shared.Return(held);
            return;
        }

        Keep(d, Frames(d, bytes));
    }

    void Keep(int d, ReadOnlySpan<byte> rest)
    {
        if (rest.IsEmpty || _fd[d] < 0) return;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(rest.Length, 256));
        rest.CopyTo(buffer);
        _partial[d] = buffer;
        _partialLength[d] = rest.Length;
    }

    ReadOnlySpan<byte> Frames(int d, ReadOnlySpan<byte> buffer)
    {
        while (_fd[d] >= 0 && MqttWire.TryReadFrame(buffer, out var header, out var bodyOffset, out var bodyLength, out var malformed))
        {
            Packet(d, header, buffer.Slice(bodyOffset, bodyLength));
            buffer = buffer[(bodyOffset + bodyLength)..];
        }

        if (_fd[d] >= 0 && !MqttWire.TryReadFrame(buffer, out _, out _, out _, out var bad) && bad) Lose(d, "connection lost: malformed packet");
        return buffer;
    }

    void Packet(int d, byte header, ReadOnlySpan<byte> body)
    {
        switch (header & 0xF0)
        {
            case 0x20 when _state[d] == RawState.AwaitConnAck && body.Length >= 2:
                if (body[1] != 0)
                {
                    FailConnect(d, MqttWire.ConnAckReason(body[1]));
                    return;
                }

                Online(d);
                return;
            case MqttWire.SubAckType:
                if (body.Length >= 3 && body[2] == 0x80)
                {
                    _counters.Failures.Add("subscribe: refused");
                }
                else
                {
                    _counters.SubscriptionGranted();
                }

                return;
            case MqttWire.PubAckType when body.Length >= 2:
                Acknowledged(d, BinaryPrimitives.ReadUInt16BigEndian(body));
                return;
            case MqttWire.PublishType:
                Command(d, header, body);
                return;
            case MqttWire.PubRelType when body.Length >= 2:
                Ack(d, MqttWire.PubCompType, BinaryPrimitives.ReadUInt16BigEndian(body));
                return;
        }
    }

    void Online(int d)
    {
        var first = (_flags[d] & EverConnected) == 0;
        _flags[d] |= EverConnected;
        _counters.Connected(first, _time.GetElapsedTime(_opStart[d]));
        _attempt[d] = 0;
        _state[d] = RawState.Online;
        _lastSend[d] = _now;
        if (_options.CommandTopicPattern is { } commands)
        {
            var filter = string.Format(CultureInfo.InvariantCulture, commands, _options.ClientId(_first + d));
            if (!Send(d, MqttWire.Subscribe(SubscribeId, filter, _options.Qos))) return;
        }

        _nextPublish[d] = _now + IntervalMs();
        ScheduleOnline(d);
    }

    void Command(int d, byte header, ReadOnlySpan<byte> body)
    {
        _counters.CommandReceived();
        var qos = (header >> 1) & 3;
        if (qos == 0 || body.Length < 2) return;
        var topicLength = BinaryPrimitives.ReadUInt16BigEndian(body);
        if (body.Length < 2 + topicLength + 2) return;
        var id = BinaryPrimitives.ReadUInt16BigEndian(body[(2 + topicLength)..]);
        Ack(d, qos == 1 ? MqttWire.PubAckType : MqttWire.PubRecType, id);
    }

    void Ack(int d, byte type, ushort id)
    {
        Span<byte> ack = stackalloc byte[MqttWire.AckLength];
        MqttWire.WriteAck(ack, type, id);
        Send(d, ack);
    }

    void Acknowledged(int d, ushort id)
    {
        if ((_flags[d] & InFlight) == 0 || id != PacketId(d)) return;
        _flags[d] &= unchecked((byte)~InFlight);
        _inFlight--;
        _sent[d]++;
        _counters.PublishCompleted(_time.GetElapsedTime(_opStart[d]));
        if (Done(d))
        {
            Finish(d);
            return;
        }

        if (_stopping) return;
        _nextPublish[d] = _now + IntervalMs();
        ScheduleOnline(d);
    }

    ushort PacketId(int d) => (ushort)(2 + (_sent[d] % 65_000));

    bool Done(int d) => _options.MessagesPerDevice > 0 && _sent[d] >= _options.MessagesPerDevice;

    long IntervalMs() => (long)(Math.Max(0, _options.IntervalSeconds + (_random.NextDouble() * 2 - 1) * _options.JitterSeconds) * 1000);

    void OnDue(int d)
    {
        switch (_state[d])
        {
            case RawState.Waiting:
                _state[d] = RawState.Queued;
                _connectQueue.Enqueue(d);
                return;
            case RawState.Connecting or RawState.AwaitConnAck:
                FailConnect(d, "connect: timeout");
                return;
            case RawState.Online:
                break;
            default:
                return;
        }

        if ((_flags[d] & InFlight) != 0 && _now - _opStart[d] * 1000 / _time.TimestampFrequency >= (long)(_options.ConnectTimeoutSeconds * 1000))
        {
            _counters.PublishFailed("publish: timeout");
            Lose(d, "connection lost: publish not acknowledged");
            return;
        }

        if ((_flags[d] & InFlight) == 0 && _now >= _nextPublish[d] && !Publish(d)) return;
        if (_fd[d] < 0) return;
        if (_options.KeepAliveSeconds > 0 && _now - _lastSend[d] >= _options.KeepAliveSeconds * 1000L && !Send(d, MqttWire.PingReq)) return;
        ScheduleOnline(d);
    }

    bool Publish(int d)
    {
        var o = _options;
        var index = _first + d;
        var clientId = o.ClientId(index);
        var topic = string.Format(CultureInfo.InvariantCulture, o.TopicPattern, clientId);
        var unixMillis = (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds;
        var payload = _payload.Build(index, clientId, _sent[d], unixMillis, _random);
        var topicBytes = Encoding.UTF8.GetByteCount(topic);
        var buffer = ArrayPool<byte>.Shared.Rent(Frame.PublishLength(topicBytes, o.Qos, payload.Length));
        var length = Frame.WritePublish(buffer, topic, topicBytes, o.Qos, PacketId(d), payload);
        if (o.Qos > 0) _opStart[d] = _time.GetTimestamp();
        var sent = Send(d, buffer.AsSpan(0, length));
        ArrayPool<byte>.Shared.Return(buffer);
        if (!sent) return false;
        if (o.Qos > 0)
        {
            _flags[d] |= InFlight;
            _inFlight++;
            return true;
        }

        _sent[d]++;
        _counters.PublishCompleted(null);
        if (Done(d))
        {
            Finish(d);
            return false;
        }

        _nextPublish[d] = _now + IntervalMs();
        return true;
    }

    void ScheduleOnline(int d)
    {
        var next = (_flags[d] & InFlight) != 0
            ? _opStart[d] * 1000 / _time.TimestampFrequency + (long)(_options.ConnectTimeoutSeconds * 1000)
            : _nextPublish[d];
        if (_options.KeepAliveSeconds > 0) next = Math.Min(next, _lastSend[d] + _options.KeepAliveSeconds * 1000L);
        Schedule(d, next);
    }

    void Schedule(int d, long dueMs)
    {
        _due[d] = dueMs;
        _wheel.Schedule(d, dueMs);
    }

    /// <summary>Writes a whole packet or gives the connection up: a device's packets are small, so a full socket buffer means a stuck broker.</summary>
    bool Send(int d, ReadOnlySpan<byte> packet)
    {
        nint written;
        fixed (byte* p = packet) written = Libc.Send(_fd[d], p, (nuint)packet.Length, Libc.MsgNoSignal);
        if (written == packet.Length)
        {
            _lastSend[d] = _now;
            return true;
        }

        Lose(d, written < 0 ? $"connection lost: {Libc.Describe(Libc.Errno)}" : "connection lost: socket send buffer full");
        return false;
    }

    void FailConnect(int d, string reason)
    {
        _counters.ConnectFailed(reason);
        CloseSocket(d);
        Backoff(d);
    }

    void Lose(int d, string reason)
    {
        if (_state[d] != RawState.Online)
        {
            FailConnect(d, reason);
            return;
        }

        if ((_flags[d] & InFlight) != 0) _counters.PublishFailed($"publish: {reason}");
        _counters.Disconnected(true, reason);
        CloseSocket(d);
        Backoff(d);
    }

    void Backoff(int d)
    {
        _state[d] = RawState.Waiting;
        var delay = _backoff.Delay(_attempt[d], DisconnectKind.Failure, _random.NextDouble());
        if (_attempt[d] < byte.MaxValue) _attempt[d]++;
        if (!_stopping) Schedule(d, _now + (long)delay.TotalMilliseconds);
    }

    /// <summary>Enough messages sent: DISCONNECT, close, and this device is out of the run.</summary>
    void Finish(int d)
    {
        Send(d, MqttWire.Disconnect);
        if (_fd[d] >= 0)
        {
            _counters.Disconnected(false, null);
            CloseSocket(d);
        }

        _state[d] = RawState.Done;
        _due[d] = long.MaxValue;
        _done++;
    }

    void CloseSocket(int d)
    {
        if ((_flags[d] & InFlight) != 0)
        {
            _flags[d] &= unchecked((byte)~InFlight);
            _inFlight--;
        }

        if (_partial[d] is { } held)
        {
            ArrayPool<byte>.Shared.Return(held);
            _partial[d] = null;
        }

        if (_fd[d] >= 0) Libc.Close(_fd[d]);
        _fd[d] = -1;
    }

    void Shutdown()
    {
        for (var d = 0; d < _count; d++)
        {
            if (_fd[d] < 0) continue;
            if (_state[d] == RawState.Online)
            {
                fixed (byte* p = MqttWire.Disconnect) Libc.Send(_fd[d], p, 2, Libc.MsgNoSignal);
                _counters.Disconnected(false, null);
            }

            CloseSocket(d);
        }
    }
}
