using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using HdrHistogram;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Scenarios.Soak;

/// <summary>
/// The persistent subscriber of a soak run, on <c>soak/#</c> at QoS 2, so each message comes at its publisher's QoS.
/// It subscribes when the broker holds no session for it, acknowledges as the spec asks (QoS 2: PUBREC, and the
/// packet id kept until PUBREL, across reconnects, so a resent PUBLISH is not taken for a new message), and records
/// which (publisher, sequence) pairs reached it, how often, and how long after their first send.
/// </summary>
public sealed class SoakSubscriber(int publishers, IPEndPoint broker, TimeSpan connectTimeout, SoakCounters counters, TimeProvider time)
    : PersistentClient("soak-sub", broker, connectTimeout, counters, time)
{
    public const string Filter = "soak/#";

    /// <summary>How many duplicates are kept by name for the report.</summary>
    public const int SampleCount = 20;

    readonly Lock _lock = new();
    readonly SequenceTracker _received = new(publishers);
    readonly Dictionary<ushort, (int Publisher, long Sequence)> _awaitingRelease = [];
    readonly List<string> _duplicateSamples = [];
    long _packetIdsReused;
    readonly LongHistogram _endToEnd = LatencyPercentiles.CreateHistogram();
    readonly long[] _duplicatesByQos = new long[3];
    readonly TaskCompletionSource<byte> _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the first SUBACK's return code.</summary>
    public Task<byte> Subscribed => _subscribed.Task;

    public long Received
    {
        get
        {
            lock (_lock) return _received.Distinct;
        }
    }

    public long Duplicates(int qos)
    {
        lock (_lock) return _duplicatesByQos[qos];
    }

    /// <summary>QoS 2 PUBLISHes that came with a packet id still awaiting its PUBREL but carried another message (a broker that lost its side of the flow).</summary>
    public long PacketIdsReused
    {
        get
        {
            lock (_lock) return _packetIdsReused;
        }
    }

    /// <summary>The first few duplicates, as "publisher/sequence QoS n".</summary>
    public IReadOnlyList<string> DuplicateSamples
    {
        get
        {
            lock (_lock) return [.. _duplicateSamples];
        }
    }

    public bool HasReceived(int publisher, long sequence)
    {
        lock (_lock) return _received.Contains(publisher, sequence);
    }

    public LongHistogram EndToEnd()
    {
        var copy = LatencyPercentiles.CreateHistogram();
        lock (_lock) copy.Add(_endToEnd);
        return copy;
    }

    protected override async Task OnConnectedAsync(bool sessionPresent, CancellationToken cancellationToken)
    {
        if (!sessionPresent) await SendLockedAsync(MqttWire.Subscribe(1, Filter, 2), cancellationToken).ConfigureAwait(false);
        else _subscribed.TrySetResult(2);
    }

    protected override void OnFrame(byte header, ReadOnlySpan<byte> body, ArrayBufferWriter<byte> replies)
    {
        var type = (byte)(header & 0xF0);
        if (type == MqttWire.SubAckType && body.Length >= 3)
        {
            _subscribed.TrySetResult(body[2]);
            return;
        }

        if (type == MqttWire.PubRelType && body.Length >= 2)
        {
            var released = BinaryPrimitives.ReadUInt16BigEndian(body);
            lock (_lock) _awaitingRelease.Remove(released);
            SoakPublisher.WriteAck(replies, MqttWire.PubCompType, released);
            return;
        }

        if (type != MqttWire.PublishType || body.Length < 2) return;
        var qos = (header >> 1) & 0x03;
        var offset = 2 + BinaryPrimitives.ReadUInt16BigEndian(body);
        ushort packetId = 0;
        if (qos > 0)
        {
            packetId = BinaryPrimitives.ReadUInt16BigEndian(body[offset..]);
            offset += 2;
        }

        var now = Time.GetTimestamp();
        lock (_lock)
        {
            if (FanInPayload.TryRead(body[offset..], out var publisher, out var sequence, out var sentAt))
            {
                // QoS 2 method A: delivered on the first PUBLISH of a packet id; a resend before PUBREL is the same message.
                // Another message under an id still awaiting PUBREL means the broker lost its side: counted, and delivered.
                var resent = false;
                if (qos == 2)
                {
                    if (_awaitingRelease.TryGetValue(packetId, out var held))
                    {
                        resent = held == (publisher, sequence);
                        if (!resent) _packetIdsReused++;
                    }

                    _awaitingRelease[packetId] = (publisher, sequence);
                }

                if (!resent)
                {
                    if (_received.Record(publisher, sequence))
                    {
                        LatencyPercentiles.Record(_endToEnd, (long)((now - sentAt) * 1_000_000.0 / Time.TimestampFrequency));
                    }
                    else if ((uint)publisher < (uint)publishers)
                    {
                        _duplicatesByQos[qos]++;
                        if (_duplicateSamples.Count < SampleCount) _duplicateSamples.Add($"{publisher}/{sequence} QoS {qos}");
                    }
                }
            }
        }

        if (qos == 1) SoakPublisher.WriteAck(replies, MqttWire.PubAckType, packetId);
        else if (qos == 2) SoakPublisher.WriteAck(replies, MqttWire.PubRecType, packetId);
    }
}
