using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Scenarios.Soak;

/// <summary>
/// A publisher with a persistent session that keeps what the spec asks a client to keep: every QoS 1 or 2 PUBLISH
/// until its PUBACK or PUBREC, every PUBREL until its PUBCOMP. After a reconnect it sends them again, in their order,
/// PUBLISH with DUP set. A message counts as acknowledged at its PUBACK (QoS 1) or PUBCOMP (QoS 2); only those are
/// owed to the subscriber.
/// </summary>
public sealed class SoakPublisher(
    int id, int qos, int payloadBytes, int maxInflight, IPEndPoint broker, TimeSpan connectTimeout, SoakCounters counters, TimeProvider time)
    : PersistentClient($"soak-pub-{id}", broker, connectTimeout, counters, time)
{
    sealed class Pending(long sequence, ushort packetId, byte[] frame)
    {
        public long Sequence => sequence;
        public ushort PacketId => packetId;
        public byte[] Frame => frame;

        /// <summary>QoS 2: PUBREC came, PUBREL is owed until PUBCOMP.</summary>
        public bool Released { get; set; }
    }

    readonly Lock _lock = new();
    readonly List<Pending> _inflight = [];
    readonly Dictionary<ushort, Pending> _byPacketId = [];
    readonly SequenceTracker _acknowledged = new(1);
    readonly PublishFrame _frame = new($"soak/{id}", qos, payloadBytes);
    long _nextSequence;
    ushort _nextPacketId;

    public int Id => id;

    public int Qos => qos;

    /// <summary>Messages published at least once; their sequence numbers are 0 .. Published − 1.</summary>
    public long Published
    {
        get
        {
            lock (_lock) return _nextSequence;
        }
    }

    public long Acknowledged
    {
        get
        {
            lock (_lock) return _acknowledged.Distinct;
        }
    }

    /// <summary>Messages published and not yet acknowledged.</summary>
    public int Inflight
    {
        get
        {
            lock (_lock) return _inflight.Count;
        }
    }

    /// <summary>The unacknowledged messages, as "publisher/sequence QoS n id p (PUBLISH|PUBREL sent)".</summary>
    public IEnumerable<string> DescribeInflight()
    {
        lock (_lock)
        {
            return [.. _inflight.Select(p => string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"{id}/{p.Sequence} QoS {qos} id {p.PacketId} ({(p.Released ? "PUBREL" : "PUBLISH")} sent)"))];
        }
    }

    /// <summary>Whether message <paramref name="sequence"/> was acknowledged (PUBACK or PUBCOMP).</summary>
    public bool WasAcknowledged(long sequence)
    {
        lock (_lock) return _acknowledged.Contains(0, sequence);
    }

    /// <summary>Publishes the next message if connected and fewer than the window are unacknowledged; false otherwise.</summary>
    public Task<bool> TryPublishNextAsync(CancellationToken cancellationToken)
    {
        if (!Ready) return Task.FromResult(false);
        return WithSendLockAsync(async () =>
        {
            byte[] frame;
            lock (_lock)
            {
                if (_inflight.Count >= maxInflight || _byPacketId.Count >= ushort.MaxValue - 1) return false;
                do
                {
                    _nextPacketId = _nextPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_nextPacketId + 1);
                }
                while (_byPacketId.ContainsKey(_nextPacketId));

                frame = _frame.Create(_nextPacketId, id, _nextSequence, Time.GetTimestamp());
                var pending = new Pending(_nextSequence++, _nextPacketId, frame);
                _inflight.Add(pending);
                _byPacketId[pending.PacketId] = pending;
            }

            // Kept even when the write fails: the next connection sends it again.
            await SendLockedAsync(frame, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);
    }

    protected override async Task OnConnectedAsync(bool sessionPresent, CancellationToken cancellationToken)
    {
        List<byte[]> resend;
        lock (_lock)
        {
            resend = _inflight.Select(p =>
            {
                if (p.Released)
                {
                    var rel = new byte[MqttWire.AckLength];
                    MqttWire.WriteAck(rel, MqttWire.PubRelType, p.PacketId);
                    return rel;
                }

                var again = (byte[])p.Frame.Clone();
                again[0] |= 0x08; // DUP
                return again;
            }).ToList();
        }

        foreach (var frame in resend)
        {
            if (!await SendLockedAsync(frame, cancellationToken).ConfigureAwait(false)) return;
        }
    }

    protected override void OnFrame(byte header, ReadOnlySpan<byte> body, ArrayBufferWriter<byte> replies)
    {
        var type = (byte)(header & 0xF0);
        if (body.Length < 2 || type is not (MqttWire.PubAckType or MqttWire.PubRecType or MqttWire.PubCompType)) return;
        var packetId = BinaryPrimitives.ReadUInt16BigEndian(body);
        lock (_lock)
        {
            if (!_byPacketId.TryGetValue(packetId, out var pending))
            {
                // A PUBREC for an id no longer pending (answered twice across a restart) still gets its PUBREL, as the spec asks.
                if (type == MqttWire.PubRecType) WriteAck(replies, MqttWire.PubRelType, packetId);
                return;
            }

            if (type == MqttWire.PubRecType && qos == 2)
            {
                pending.Released = true;
                WriteAck(replies, MqttWire.PubRelType, packetId);
                return;
            }

            if ((type == MqttWire.PubAckType && qos == 1) || (type == MqttWire.PubCompType && qos == 2))
            {
                _byPacketId.Remove(packetId);
                _inflight.Remove(pending);
                _acknowledged.Record(0, pending.Sequence);
            }
        }
    }

    internal static void WriteAck(ArrayBufferWriter<byte> replies, byte type, ushort packetId)
    {
        MqttWire.WriteAck(replies.GetSpan(MqttWire.AckLength), type, packetId);
        replies.Advance(MqttWire.AckLength);
    }
}
