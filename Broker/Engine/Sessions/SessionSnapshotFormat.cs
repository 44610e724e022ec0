using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using IotRealtime.Broker.Engine.Persistence;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// The binary encoding of a <see cref="SessionSnapshot"/>: a version byte, then the fields in a fixed order. Messages and
/// subscriptions are written as the embedded store writes them (<see cref="StoreRecords"/>); a reader refuses any other
/// version, a truncated snapshot and trailing bytes.
/// </summary>
internal static class SessionSnapshotFormat
{
    public static void Write(SessionSnapshot s, IBufferWriter<byte> output)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(SessionSnapshot.Version);
            w.Write(s.ClientId);
            StoreRecords.WriteNullable(w, s.Username);
            w.Write(s.ExpiryInterval);
            w.Write(s.DisconnectedAt.UtcTicks);
            w.Write(s.PendingWill is not null);
            if (s.PendingWill is { } will)
            {
                StoreRecords.WriteMessage(w, will.Message);
                w.Write(will.DelaySeconds);
                w.Write(will.DueAt.UtcTicks);
            }
            w.Write(s.LastPacketId);
            w.Write(s.Subscriptions.Count);
            foreach (var subscription in s.Subscriptions)
            {
                StoreRecords.WriteSubscription(w, subscription);
            }
            w.Write(s.Inflight.Count);
            foreach (var delivery in s.Inflight)
            {
                WriteDelivery(w, delivery);
                w.Write(delivery.PacketId);
                w.Write((byte)delivery.State);
                w.Write(delivery.Sent);
            }
            w.Write(s.Queued.Count);
            foreach (var delivery in s.Queued)
            {
                WriteDelivery(w, delivery);
            }
            w.Write(s.InboundQos2.Count);
            foreach (var id in s.InboundQos2)
            {
                w.Write(id);
            }
        }
        output.Write(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    }

    public static SessionSnapshot Read(ReadOnlyMemory<byte> bytes)
    {
        var segment = MemoryMarshal.TryGetArray(bytes, out var array) ? array : new ArraySegment<byte>(bytes.ToArray());
        using var stream = new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false);
        using var r = new BinaryReader(stream, Encoding.UTF8);
        if (segment.Count == 0)
        {
            throw new InvalidDataException("Session snapshot is empty.");
        }
        var version = r.ReadByte();
        if (version != SessionSnapshot.Version)
        {
            throw new InvalidDataException($"Session snapshot version {version} is not supported: this node reads version {SessionSnapshot.Version}.");
        }
        try
        {
            var snapshot = ReadV1(r);
            if (stream.Position != stream.Length)
            {
                throw new InvalidDataException($"Session snapshot has {stream.Length - stream.Position} bytes after its end.");
            }
            return snapshot;
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentException)
        {
            throw new InvalidDataException("Session snapshot is truncated or malformed.", e);
        }
    }

    static SessionSnapshot ReadV1(BinaryReader r)
    {
        var clientId = r.ReadString();
        var username = StoreRecords.ReadNullable(r);
        var expiry = r.ReadUInt32();
        var disconnectedAt = ReadTime(r);
        SnapshotWill? will = null;
        if (r.ReadBoolean())
        {
            will = new SnapshotWill(StoreRecords.ReadMessage(r), r.ReadUInt32(), ReadTime(r));
        }
        var lastPacketId = r.ReadUInt16();
        var subscriptions = new StoredSubscription[Count(r)];
        for (var i = 0; i < subscriptions.Length; i++)
        {
            subscriptions[i] = Checked(StoreRecords.ReadSubscription(r));
        }
        var inflight = new SnapshotDelivery[Count(r)];
        var packetIds = new HashSet<ushort>();
        for (var i = 0; i < inflight.Length; i++)
        {
            var d = ReadDelivery(r) with { PacketId = r.ReadUInt16(), State = (StoredDeliveryState)r.ReadByte(), Sent = r.ReadBoolean() };
            if (d.PacketId == 0 || !packetIds.Add(d.PacketId))
            {
                throw new InvalidDataException($"Session snapshot has an in-flight delivery with packet id {d.PacketId} (zero or used twice).");
            }
            var step = d.QoS == MqttQualityOfServiceLevel.AtLeastOnce
                ? d.State == StoredDeliveryState.AwaitingPubAck
                : d.State is StoredDeliveryState.AwaitingPubRec or StoredDeliveryState.AwaitingPubComp;
            if (!step)
            {
                throw new InvalidDataException($"Session snapshot has an in-flight QoS {(int)d.QoS} delivery in state {d.State}.");
            }
            inflight[i] = d;
        }
        var queued = new SnapshotDelivery[Count(r)];
        for (var i = 0; i < queued.Length; i++)
        {
            queued[i] = ReadDelivery(r);
        }
        var inbound = new ushort[Count(r)];
        for (var i = 0; i < inbound.Length; i++)
        {
            inbound[i] = r.ReadUInt16();
        }
        return new SessionSnapshot
        {
            ClientId = clientId,
            Username = username,
            ExpiryInterval = expiry,
            DisconnectedAt = disconnectedAt,
            PendingWill = will,
            LastPacketId = lastPacketId,
            Subscriptions = subscriptions,
            Inflight = inflight,
            Queued = queued,
            InboundQos2 = inbound,
        };
    }

    static void WriteDelivery(BinaryWriter w, SnapshotDelivery d)
    {
        StoreRecords.WriteMessage(w, d.Message);
        w.Write((byte)d.QoS);
        w.Write(d.Retain);
        w.Write(d.SubscriptionIds?.Count ?? 0);
        foreach (var id in d.SubscriptionIds ?? [])
        {
            w.Write(id);
        }
        StoreRecords.WriteNullable(w, d.SharedFilter);
    }

    static SnapshotDelivery ReadDelivery(BinaryReader r)
    {
        var message = StoreRecords.ReadMessage(r);
        var qos = r.ReadByte();
        if (qos > 2)
        {
            throw new InvalidDataException($"Session snapshot has a delivery with QoS {qos}.");
        }
        var retain = r.ReadBoolean();
        var ids = new uint[Count(r)];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = r.ReadUInt32();
        }
        return new SnapshotDelivery(message, (MqttQualityOfServiceLevel)qos, retain, ids.Length > 0 ? ids : null, StoreRecords.ReadNullable(r));
    }

    static StoredSubscription Checked(StoredSubscription s) => s.QoS <= 2 && s.RetainHandling <= 2
        ? s
        : throw new InvalidDataException($"Session snapshot has subscription '{s.Filter}' with QoS {s.QoS} or retain handling {s.RetainHandling}.");

    /// <summary>A count, checked against what is left so a corrupt one cannot make a huge array.</summary>
    static int Count(BinaryReader r)
    {
        var count = r.ReadInt32();
        return count >= 0 && count <= r.BaseStream.Length - r.BaseStream.Position
            ? count
            : throw new InvalidDataException($"Session snapshot has an impossible count {count}.");
    }

    static DateTimeOffset ReadTime(BinaryReader r)
    {
        var ticks = r.ReadInt64();
        return ticks >= DateTimeOffset.MinValue.UtcTicks && ticks <= DateTimeOffset.MaxValue.UtcTicks
            ? new DateTimeOffset(ticks, TimeSpan.Zero)
            : throw new InvalidDataException($"Session snapshot has an impossible time ({ticks} ticks).");
    }
}
