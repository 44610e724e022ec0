using System.Buffers.Binary;
using System.Net.Sockets;
using HdrHistogram;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// One publishing connection: a send loop that writes as many PUBLISH frames as it has credits for in one socket
/// write, and a receive loop that completes QoS 1 (PUBACK) and QoS 2 (PUBREC → PUBREL, PUBCOMP) flows and records
/// publish-to-ack latency.
/// </summary>
public sealed class FanInPublisher
{
    /// <summary>Unacknowledged publishes per connection, at most: leaves free packet ids even if acks come out of order.</summary>
    const int AckWindow = 60_000;

    /// <summary>Largest single socket write; a batch stops at whichever of this and its credit share comes first.</summary>
    const int MaxWriteBytes = 64 * 1024;

    readonly Socket _socket;
    readonly int _id;
    readonly int _qos;
    readonly int _maxBatch;
    readonly TimeProvider _time;
    readonly byte[] _template;
    readonly int _packetIdOffset;
    readonly int _payloadOffset;
    readonly long[] _sentAt = new long[65_536];
    readonly SemaphoreSlim _window = new(AckWindow, AckWindow);
    readonly SemaphoreSlim _sendLock = new(1, 1);
    readonly LongHistogram _ackLatency = LatencyPercentiles.CreateHistogram();
    ushort _nextPacketId;
    long _sent;
    long _acked;

    public FanInPublisher(Socket socket, int id, int qos, int payloadBytes, int maxBatch, TimeProvider time)
    {
        _socket = socket;
        _id = id;
        _qos = qos;
        _maxBatch = maxBatch;
        _time = time;
        _template = MqttWire.PublishTemplate($"bench/{id}", qos, payloadBytes, out _packetIdOffset, out _payloadOffset);
    }

    public int Id => _id;

    /// <summary>Publishes written to the socket; their sequence numbers are 0 .. Sent − 1.</summary>
    public long Sent => Volatile.Read(ref _sent);

    public long Acked => Volatile.Read(ref _acked);

    public LongHistogram AckLatency => _ackLatency;

    public async Task SendLoopAsync(FanInFlow flow, CancellationToken stopPublishing, CancellationToken abort)
    {
        var frame = _template.Length;
        var buffer = new byte[Math.Max(frame, Math.Min(MaxWriteBytes, frame * _maxBatch))];
        while (!stopPublishing.IsCancellationRequested)
        {
            try
            {
                if (_qos > 0) await _window.WaitAsync(stopPublishing).ConfigureAwait(false);
                if (!await flow.WaitAsync(stopPublishing).ConfigureAwait(false)) break;
            }
            catch (OperationCanceledException)
            {
                break;
            }

            var count = 0;
            var at = 0;
            var exhausted = false;
            while (true)
            {
                if (!flow.TryClaim())
                {
                    flow.Return(1);
                    if (_qos > 0) _window.Release();
                    exhausted = true;
                    break;
                }

                Encode(buffer.AsSpan(at, frame), _sent + count);
                at += frame;
                count++;
                if (count >= _maxBatch || at + frame > buffer.Length) break;
                if (_qos > 0 && !_window.Wait(0)) break;
                if (!flow.TryTake())
                {
                    if (_qos > 0) _window.Release();
                    break;
                }
            }

            if (count > 0)
            {
                await _sendLock.WaitAsync(abort).ConfigureAwait(false);
                try
                {
                    await _socket.SendAsync(buffer.AsMemory(0, at), SocketFlags.None, abort).ConfigureAwait(false);
                }
                finally
                {
                    _sendLock.Release();
                }

                Volatile.Write(ref _sent, _sent + count);
            }

            if (exhausted) break;
        }
    }

    void Encode(Span<byte> destination, long sequence)
    {
        _template.CopyTo(destination);
        var now = _time.GetTimestamp();
        if (_qos > 0)
        {
            // Skip ids still waiting for their ack; the window keeps some always free.
            do
            {
                _nextPacketId = _nextPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_nextPacketId + 1);
            }
            while (Volatile.Read(ref _sentAt[_nextPacketId]) != 0);

            Volatile.Write(ref _sentAt[_nextPacketId], now);
            BinaryPrimitives.WriteUInt16BigEndian(destination[_packetIdOffset..], _nextPacketId);
        }

        FanInPayload.Write(destination[_payloadOffset..], _id, sequence, now);
    }

    /// <summary>Reads acknowledgements until the broker closes the connection or <paramref name="abort"/> fires.</summary>
    public async Task ReceiveLoopAsync(CancellationToken abort)
    {
        var buffer = new byte[64 * 1024];
        var replies = new byte[buffer.Length];
        var filled = 0;
        var frequency = (double)_time.TimestampFrequency;
        try
        {
            while (true)
            {
                var n = await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, abort).ConfigureAwait(false);
                if (n == 0) return;
                filled += n;
                var at = 0;
                var replyLength = 0;
                var now = _time.GetTimestamp();
                while (MqttWire.TryReadFrame(buffer.AsSpan(at, filled - at), out var header, out var bodyOffset, out var bodyLength, out var malformed))
                {
                    var body = buffer.AsSpan(at + bodyOffset, bodyLength);
                    var type = (byte)(header & 0xF0);
                    if (type is MqttWire.PubAckType or MqttWire.PubCompType && body.Length >= 2)
                    {
                        Complete(BinaryPrimitives.ReadUInt16BigEndian(body), now, frequency);
                    }
                    else if (type == MqttWire.PubRecType && body.Length >= 2)
                    {
                        MqttWire.WriteAck(replies.AsSpan(replyLength), MqttWire.PubRelType, BinaryPrimitives.ReadUInt16BigEndian(body));
                        replyLength += MqttWire.AckLength;
                    }

                    at += bodyOffset + bodyLength;
                }

                // Acks are 4 bytes; a partial one is moved to the front of the buffer.
                buffer.AsSpan(at, filled - at).CopyTo(buffer);
                filled -= at;
                if (replyLength > 0)
                {
                    await _sendLock.WaitAsync(abort).ConfigureAwait(false);
                    try
                    {
                        await _socket.SendAsync(replies.AsMemory(0, replyLength), SocketFlags.None, abort).ConfigureAwait(false);
                    }
                    finally
                    {
                        _sendLock.Release();
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
    }

    void Complete(ushort packetId, long now, double frequency)
    {
        var sentAt = Volatile.Read(ref _sentAt[packetId]);
        if (sentAt == 0) return;
        LatencyPercentiles.Record(_ackLatency, (long)((now - sentAt) * 1_000_000 / frequency));
        Volatile.Write(ref _sentAt[packetId], 0);
        Interlocked.Increment(ref _acked);
        _window.Release();
    }

    public void Disconnect() => MqttWire.SendDisconnectAndClose(_socket);
}
