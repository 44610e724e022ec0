using System.Buffers.Binary;
using System.Net.Sockets;
using HdrHistogram;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// A subscriber that receives <see cref="FanInPayload"/> messages (fan-in and bench runs). Reads into one buffer of
/// <paramref name="bufferBytes"/>, parses frames where they lie, acknowledges everything one read brought in a single
/// write, and keeps a sequence tracker and an end-to-end latency histogram; what each read's first-time messages mean
/// to the run is up to <see cref="Arrived"/> and <see cref="OnRead"/>.
/// </summary>
public abstract class PayloadSubscriber(Socket socket, int publishers, int bufferBytes, TimeProvider time)
{
    readonly SequenceTracker _tracker = new(publishers);
    readonly LongHistogram _endToEnd = LatencyPercentiles.CreateHistogram();
    readonly TaskCompletionSource<byte> _subAck = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SequenceTracker Tracker => _tracker;

    public LongHistogram EndToEnd => _endToEnd;

    /// <summary>Completes with the SUBACK return code (0, 1, 2, or 0x80 for failure).</summary>
    public Task<byte> SubscribedTask => _subAck.Task;

    public async Task SubscribeAsync(string filter, int qos, CancellationToken cancellationToken) =>
        await socket.SendAsync(MqttWire.Subscribe(1, filter, qos), SocketFlags.None, cancellationToken).ConfigureAwait(false);

    /// <summary>A message seen for the first time; true when that completes it (see <see cref="OnRead"/>).</summary>
    protected virtual bool Arrived(int publisher, long sequence) => false;

    /// <summary>After each read: how many first-time messages it brought, how many of them completed, and when it was parsed.</summary>
    protected abstract void OnRead(int fresh, int completed, long timestamp);

    /// <summary>Reads until the broker closes the connection or <paramref name="abort"/> fires.</summary>
    public async Task ReceiveLoopAsync(CancellationToken abort)
    {
        var buffer = new byte[bufferBytes];
        var replies = new byte[Math.Max(1024, buffer.Length / 4)];
        var filled = 0;
        var frequency = (double)time.TimestampFrequency;
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, abort).ConfigureAwait(false);
                if (n == 0) return;
                filled += n;
                var at = 0;
                var replyLength = 0;
                var fresh = 0;
                var completed = 0;
                var now = time.GetTimestamp();
                while (replyLength <= replies.Length - MqttWire.AckLength
                       && MqttWire.TryReadFrame(buffer.AsSpan(at, filled - at), out var header, out var bodyOffset, out var bodyLength, out _))
                {
                    var body = buffer.AsSpan(at + bodyOffset, bodyLength);
                    var type = (byte)(header & 0xF0);
                    if (type == MqttWire.PublishType)
                    {
                        var qos = (header >> 1) & 0x03;
                        var offset = 2 + BinaryPrimitives.ReadUInt16BigEndian(body);
                        ushort packetId = 0;
                        if (qos > 0)
                        {
                            packetId = BinaryPrimitives.ReadUInt16BigEndian(body[offset..]);
                            offset += 2;
                        }

                        if (FanInPayload.TryRead(body[offset..], out var publisher, out var sequence, out var sentAt) && _tracker.Record(publisher, sequence))
                        {
                            fresh++;
                            if (Arrived(publisher, sequence)) completed++;
                            LatencyPercentiles.Record(_endToEnd, (long)((now - sentAt) * 1_000_000 / frequency));
                        }

                        if (qos > 0)
                        {
                            MqttWire.WriteAck(replies.AsSpan(replyLength), qos == 1 ? MqttWire.PubAckType : MqttWire.PubRecType, packetId);
                            replyLength += MqttWire.AckLength;
                        }
                    }
                    else if (type == MqttWire.PubRelType && body.Length >= 2)
                    {
                        MqttWire.WriteAck(replies.AsSpan(replyLength), MqttWire.PubCompType, BinaryPrimitives.ReadUInt16BigEndian(body));
                        replyLength += MqttWire.AckLength;
                    }
                    else if (type == MqttWire.SubAckType && body.Length >= 3)
                    {
                        _subAck.TrySetResult(body[2]);
                    }

                    at += bodyOffset + bodyLength;
                }

                if (MqttWire.TryReadFrame(buffer.AsSpan(at, filled - at), out _, out var pendingOffset, out var pendingLength, out var bad) is false)
                {
                    if (bad) throw new InvalidDataException("malformed MQTT remaining length from the broker");
                    if (at == 0 && pendingOffset > 0 && pendingOffset + pendingLength > buffer.Length)
                        throw new InvalidDataException($"a {pendingLength} B frame does not fit the {buffer.Length} B receive buffer");
                }

                buffer.AsSpan(at, filled - at).CopyTo(buffer);
                filled -= at;

                if (replyLength > 0)
                    await socket.SendAsync(replies.AsMemory(0, replyLength), SocketFlags.None, abort).ConfigureAwait(false);

                OnRead(fresh, completed, now);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
        finally
        {
            _subAck.TrySetResult(0x80);
        }
    }

    public void Disconnect() => MqttWire.SendDisconnectAndClose(socket);
}
