using System.Buffers.Binary;
using System.Net.Sockets;
using HdrHistogram;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// The one subscriber of a fan-in run. Reads into one large buffer, parses frames where they lie, acknowledges
/// everything one read brought in a single write, and returns credits to the <see cref="FanInFlow"/>.
/// </summary>
public sealed class FanInSubscriber(Socket socket, int publishers, int payloadBytes, FanInFlow flow, TimeProvider time)
{
    public const string Filter = "bench/#";

    /// <summary>A throughput mark is taken every this many messages (see <see cref="SteadyStateRate"/>).</summary>
    const int MarkEvery = 1024;

    readonly SequenceTracker _tracker = new(publishers);
    readonly LongHistogram _endToEnd = LatencyPercentiles.CreateHistogram();
    readonly List<(long Received, long Timestamp)> _marks = [];
    readonly TaskCompletionSource<byte> _subAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
    long _received;

    /// <summary>Distinct messages received so far (duplicates not counted).</summary>
    public long Received => Volatile.Read(ref _received);

    public SequenceTracker Tracker => _tracker;

    public LongHistogram EndToEnd => _endToEnd;

    public IReadOnlyList<(long Received, long Timestamp)> Marks => _marks;

    /// <summary>Completes with the SUBACK return code (0, 1, 2, or 0x80 for failure).</summary>
    public Task<byte> SubscribedTask => _subAck.Task;

    public async Task SubscribeAsync(int qos, CancellationToken cancellationToken) =>
        await socket.SendAsync(MqttWire.Subscribe(1, Filter, qos), SocketFlags.None, cancellationToken).ConfigureAwait(false);

    /// <summary>Reads until the broker closes the connection or <paramref name="abort"/> fires.</summary>
    public async Task ReceiveLoopAsync(CancellationToken abort)
    {
        // Large enough for many frames per read, and always for at least one whole frame.
        var buffer = new byte[Math.Max(1024 * 1024, 2 * (payloadBytes + 1024))];
        var replies = new byte[buffer.Length / 4];
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
                var now = time.GetTimestamp();
                while (replyLength <= replies.Length - MqttWire.AckLength
                       && MqttWire.TryReadFrame(buffer.AsSpan(at, filled - at), out var header, out var bodyOffset, out var bodyLength, out var malformed))
                {
                    var body = buffer.AsSpan(at + bodyOffset, bodyLength);
                    var type = (byte)(header & 0xF0);
                    if (type == MqttWire.PublishType)
                    {
                        var qos = (header >> 1) & 0x03;
                        var topicLength = BinaryPrimitives.ReadUInt16BigEndian(body);
                        var offset = 2 + topicLength;
                        ushort packetId = 0;
                        if (qos > 0)
                        {
                            packetId = BinaryPrimitives.ReadUInt16BigEndian(body[offset..]);
                            offset += 2;
                        }

                        if (FanInPayload.TryRead(body[offset..], out var publisher, out var sequence, out var sentAt) && _tracker.Record(publisher, sequence))
                        {
                            fresh++;
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

                if (MqttWire.TryReadFrame(buffer.AsSpan(at, filled - at), out _, out _, out _, out var bad) is false && bad)
                    throw new InvalidDataException("malformed MQTT remaining length from the broker");

                buffer.AsSpan(at, filled - at).CopyTo(buffer);
                filled -= at;

                if (replyLength > 0)
                    await socket.SendAsync(replies.AsMemory(0, replyLength), SocketFlags.None, abort).ConfigureAwait(false);

                if (fresh > 0)
                {
                    var before = _received;
                    Volatile.Write(ref _received, before + fresh);
                    if (before == 0 || (before + fresh) / MarkEvery != before / MarkEvery) _marks.Add((before + fresh, now));
                    flow.Return(fresh);
                }
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

    public void Disconnect()
    {
        try
        {
            socket.Send(MqttWire.Disconnect, SocketFlags.None);
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        socket.Dispose();
    }
}
