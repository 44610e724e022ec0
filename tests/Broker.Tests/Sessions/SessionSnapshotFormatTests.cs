using System.Buffers;
using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Sessions;

/// <summary>The bytes a session crosses between nodes in: every field survives, and what this node cannot read is refused clearly.</summary>
public sealed class SessionSnapshotFormatTests
{
    static readonly DateTimeOffset At = new(2026, 12, 3, 18, 0, 0, TimeSpan.Zero);

    static MqttMessage Message(string topic, string payload, int seconds, bool everything = false) => new()
    {
        Topic = topic,
        Payload = Encoding.UTF8.GetBytes(payload),
        QoS = MqttQualityOfServiceLevel.ExactlyOnce,
        Retain = everything,
        ContentType = everything ? "application/json" : null,
        ResponseTopic = everything ? "reply/here" : null,
        CorrelationData = everything ? [1, 2, 3] : null,
        PayloadFormat = everything ? MqttPayloadFormatIndicator.CharacterData : MqttPayloadFormatIndicator.Unspecified,
        UserProperties = everything ? [new MqttUserProperty("k", Encoding.UTF8.GetBytes("v")), new MqttUserProperty("k", Encoding.UTF8.GetBytes("w"))] : null,
        PublisherClientId = "publisher-" + payload,
        PublisherUsername = everything ? "alice" : null,
        ReceivedAt = At.AddSeconds(seconds),
        ExpiresAt = everything ? At.AddSeconds(seconds + 60) : null,
    };

    static SessionSnapshot Full() => new()
    {
        ClientId = "dev-ü",
        Username = "bob",
        ExpiryInterval = 3600,
        DisconnectedAt = At,
        PendingWill = new SnapshotWill(Message("status/dev", "offline", 0, everything: true), 30, At.AddSeconds(30)),
        LastPacketId = 65535,
        Subscriptions =
        [
            new StoredSubscription("t/a", 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, SubscriptionIdentifier: 7, Filtered: true),
            new StoredSubscription("$share/g/t/s", 2, false, false, 0, 0, false),
        ],
        Inflight =
        [
            new SnapshotDelivery(Message("t/a", "one", 1, everything: true), MqttQualityOfServiceLevel.AtLeastOnce, true, [7, 9], null, 65534, StoredDeliveryState.AwaitingPubAck, true),
            new SnapshotDelivery(Message("t/s", "two", 2), MqttQualityOfServiceLevel.ExactlyOnce, false, null, "$share/g/t/s", 65535, StoredDeliveryState.AwaitingPubRec, false),
            new SnapshotDelivery(Message("t/q", "three", 3), MqttQualityOfServiceLevel.ExactlyOnce, false, null, null, 1, StoredDeliveryState.AwaitingPubComp, true),
        ],
        Queued =
        [
            new SnapshotDelivery(Message("t/a", "four", 4), MqttQualityOfServiceLevel.AtMostOnce, false, [7], null),
            new SnapshotDelivery(Message("t/s", "five", 5, everything: true), MqttQualityOfServiceLevel.AtLeastOnce, true, null, "$share/g/t/s"),
        ],
        InboundQos2 = [3, 42, 65535],
    };

    static void AssertSameMessage(MqttMessage expected, MqttMessage actual)
    {
        Assert.Equal(expected.Topic, actual.Topic);
        Assert.Equal(expected.Payload.ToArray(), actual.Payload.ToArray());
        Assert.Equal(expected.QoS, actual.QoS);
        Assert.Equal(expected.Retain, actual.Retain);
        Assert.Equal(expected.ContentType, actual.ContentType);
        Assert.Equal(expected.ResponseTopic, actual.ResponseTopic);
        Assert.Equal(expected.CorrelationData, actual.CorrelationData);
        Assert.Equal(expected.PayloadFormat, actual.PayloadFormat);
        Assert.Equal(
            expected.UserProperties?.Select(p => (p.Name, Encoding.UTF8.GetString(p.ValueBuffer.Span))),
            actual.UserProperties?.Select(p => (p.Name, Encoding.UTF8.GetString(p.ValueBuffer.Span))));
        Assert.Equal(expected.PublisherClientId, actual.PublisherClientId);
        Assert.Equal(expected.PublisherUsername, actual.PublisherUsername);
        Assert.Equal(expected.ReceivedAt, actual.ReceivedAt);
        Assert.Equal(expected.ExpiresAt, actual.ExpiresAt);
    }

    static void AssertSameDeliveries(IReadOnlyList<SnapshotDelivery> expected, IReadOnlyList<SnapshotDelivery> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            AssertSameMessage(expected[i].Message, actual[i].Message);
            Assert.Equal(expected[i].QoS, actual[i].QoS);
            Assert.Equal(expected[i].Retain, actual[i].Retain);
            Assert.Equal(expected[i].SubscriptionIds, actual[i].SubscriptionIds);
            Assert.Equal(expected[i].SharedFilter, actual[i].SharedFilter);
            Assert.Equal(expected[i].PacketId, actual[i].PacketId);
            Assert.Equal(expected[i].State, actual[i].State);
            Assert.Equal(expected[i].Sent, actual[i].Sent);
        }
    }

    static void AssertSame(SessionSnapshot expected, SessionSnapshot actual)
    {
        Assert.Equal(expected.ClientId, actual.ClientId);
        Assert.Equal(expected.Username, actual.Username);
        Assert.Equal(expected.ExpiryInterval, actual.ExpiryInterval);
        Assert.Equal(expected.DisconnectedAt, actual.DisconnectedAt);
        Assert.Equal(expected.PendingWill is null, actual.PendingWill is null);
        if (expected.PendingWill is { } will)
        {
            AssertSameMessage(will.Message, actual.PendingWill!.Message);
            Assert.Equal(will.DelaySeconds, actual.PendingWill.DelaySeconds);
            Assert.Equal(will.DueAt, actual.PendingWill.DueAt);
        }
        Assert.Equal(expected.LastPacketId, actual.LastPacketId);
        Assert.Equal(expected.Subscriptions, actual.Subscriptions); // records: compared field by field
        AssertSameDeliveries(expected.Inflight, actual.Inflight);
        AssertSameDeliveries(expected.Queued, actual.Queued);
        Assert.Equal(expected.InboundQos2, actual.InboundQos2);
    }

    /// <summary>A sequence in two segments, as bytes arrive from a pipe.</summary>
    static ReadOnlySequence<byte> Split(byte[] bytes, int at)
    {
        var first = new Segment(bytes.AsMemory(0, at), 0);
        var second = first.Append(bytes.AsMemory(at));
        return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
    }

    sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    [Fact]
    public void Every_field_survives_the_round_trip()
    {
        var snapshot = Full();
        var output = new ArrayBufferWriter<byte>();
        snapshot.WriteTo(output);
        var bytes = output.WrittenSpan.ToArray();
        Assert.Equal(SessionSnapshot.Version, bytes[0]);

        AssertSame(snapshot, SessionSnapshot.Read(bytes));
        AssertSame(snapshot, SessionSnapshot.Read(new ReadOnlySequence<byte>(bytes)));
        AssertSame(snapshot, SessionSnapshot.Read(Split(bytes, bytes.Length / 2)));
        Assert.Equal(bytes, snapshot.ToBytes());
    }

    [Fact]
    public void An_empty_session_survives_the_round_trip()
    {
        var snapshot = new SessionSnapshot { ClientId = "c", ExpiryInterval = uint.MaxValue, DisconnectedAt = At };
        AssertSame(snapshot, SessionSnapshot.Read(snapshot.ToBytes()));
    }

    [Fact]
    public void An_unknown_version_is_refused_naming_it()
    {
        var bytes = Full().ToBytes();
        bytes[0] = 2;
        var error = Assert.Throws<InvalidDataException>(() => SessionSnapshot.Read(bytes));
        Assert.Contains("version 2 is not supported", error.Message);
    }

    [Fact]
    public void A_truncated_or_padded_snapshot_is_refused()
    {
        var bytes = Full().ToBytes();
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => SessionSnapshot.Read(bytes.AsMemory(0, bytes.Length - 1))).Message);
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => SessionSnapshot.Read(ReadOnlyMemory<byte>.Empty)).Message);
        Assert.Contains("after its end", Assert.Throws<InvalidDataException>(() => SessionSnapshot.Read(bytes.Append((byte)0).ToArray())).Message);
    }
}
