using System.Buffers;
using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using Xunit.Abstractions;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>Where a QoS 2 flow stands when the broker is killed.</summary>
public enum Qos2CrashMoment
{
    /// <summary>PUBLISH sent, no PUBREC received: after the restart the publisher resends the PUBLISH with DUP.</summary>
    BeforePubRec,

    /// <summary>
    /// The broker recorded the message and sent PUBREC, but the publisher never saw it (the connection died with the
    /// broker): after the restart it resends the PUBLISH with DUP, which the broker must take for a duplicate.
    /// </summary>
    PubRecLost,

    /// <summary>PUBREC received, PUBREL not sent: after the restart the publisher sends PUBREL.</summary>
    AfterPubRecBeforePubRel,

    /// <summary>PUBREL sent, no PUBCOMP received: after the restart the publisher resends PUBREL.</summary>
    AfterPubRelBeforePubComp,
}

/// <summary>
/// QoS 2 across a SIGKILL of the broker process, with raw-socket clients that do exactly what the spec asks of a client
/// reconnecting to a persistent session (MQTT-4.4.0-1: resend unacknowledged PUBLISH packets with DUP, and PUBREL
/// packets, with their original packet ids). Every message reaches the persistent subscriber exactly once.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class Qos2CrashTests(ITestOutputHelper output)
{
    const int Completed = 3;   // messages 1..3 finish their flow before the crash
    const int InFlight = 5;    // messages 4..8 are at the crash moment when the broker dies
    const ushort MarkerId = 100;

    [Theory]
    [InlineData(Qos2CrashMoment.BeforePubRec, MqttProtocolVersion.V500)]
    [InlineData(Qos2CrashMoment.PubRecLost, MqttProtocolVersion.V500)]
    [InlineData(Qos2CrashMoment.AfterPubRecBeforePubRel, MqttProtocolVersion.V500)]
    [InlineData(Qos2CrashMoment.AfterPubRelBeforePubComp, MqttProtocolVersion.V500)]
    [InlineData(Qos2CrashMoment.BeforePubRec, MqttProtocolVersion.V311)]
    [InlineData(Qos2CrashMoment.PubRecLost, MqttProtocolVersion.V311)]
    [InlineData(Qos2CrashMoment.AfterPubRecBeforePubRel, MqttProtocolVersion.V311)]
    [InlineData(Qos2CrashMoment.AfterPubRelBeforePubComp, MqttProtocolVersion.V311)]
    public async Task Qos2_publisher_resending_after_a_crash_delivers_every_message_exactly_once(Qos2CrashMoment moment, MqttProtocolVersion version)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("iotrt-qos2crash-").FullName;
        try
        {
            // what the publisher holds at the crash: packet ids it got PUBREC for
            var received = new HashSet<ushort>();
            var port = BrokerProcess.FreePort();
            await using (var broker = await BrokerProcess.StartAsync(dataDirectory, port))
            {
                await SubscribeThenGoOfflineAsync(port, version, "qos2crash-subscriber", "qos2/#");
                var (publisher, _) = await ConnectPersistentAsync(port, version, "qos2crash-publisher");
                await using (publisher)
                {
                    for (ushort id = 1; id <= Completed; id++)
                    {
                        await CompleteQos2PublishAsync(publisher, id, Payload(id));
                    }
                    for (ushort id = Completed + 1; id <= Completed + InFlight; id++)
                    {
                        await publisher.SendAsync(Publish(id, Payload(id), dup: false));
                    }
                    if (moment != Qos2CrashMoment.BeforePubRec)
                    {
                        while (received.Count < InFlight)
                        {
                            var rec = await publisher.ReceiveAsync<MqttPubRecPacket>(Timeouts.Default);
                            Assert.Equal(MqttPubRecReasonCode.Success, rec.ReasonCode);
                            Assert.True(received.Add(rec.PacketIdentifier), $"a second PUBREC for {rec.PacketIdentifier}");
                        }
                    }
                    if (moment == Qos2CrashMoment.PubRecLost)
                    {
                        received.Clear(); // PUBREC left the broker (so the log holds the message), but the publisher never saw it
                    }
                    if (moment == Qos2CrashMoment.AfterPubRelBeforePubComp)
                    {
                        foreach (var id in received)
                        {
                            await publisher.SendAsync(new MqttPubRelPacket { PacketIdentifier = id });
                        }
                    }
                    broker.Kill();
                    await broker.WaitForExitAsync(TimeSpan.FromSeconds(10));
                }
            }

            var restartPort = BrokerProcess.FreePort();
            await using var restarted = await BrokerProcess.StartAsync(dataDirectory, restartPort);
            var (again, connAck) = await ConnectPersistentAsync(restartPort, version, "qos2crash-publisher");
            await using (again)
            {
                Assert.True(connAck.IsSessionPresent, "the publisher's session survived the crash");
                // MQTT-4.4.0-1: resend in the original order, PUBLISH (with DUP) where no PUBREC came, else PUBREL
                var open = new HashSet<ushort>();
                for (ushort id = Completed + 1; id <= Completed + InFlight; id++)
                {
                    await again.SendAsync(received.Contains(id) ? new MqttPubRelPacket { PacketIdentifier = id } : Publish(id, Payload(id), dup: true));
                    open.Add(id);
                }
                while (open.Count > 0)
                {
                    switch (await again.ReceiveAsync(Timeouts.Default))
                    {
                        case MqttPubRecPacket rec:
                            Assert.True(rec.ReasonCode == MqttPubRecReasonCode.Success, $"PUBREC {rec.PacketIdentifier} after the restart: {rec.ReasonCode}");
                            await again.SendAsync(new MqttPubRelPacket { PacketIdentifier = rec.PacketIdentifier });
                            break;
                        case MqttPubCompPacket comp:
                            // 0x92: the broker had completed the flow before it died (its PUBCOMP was lost with it)
                            Assert.True(comp.ReasonCode is MqttPubCompReasonCode.Success or MqttPubCompReasonCode.PacketIdentifierNotFound,
                                $"PUBCOMP {comp.PacketIdentifier}: {comp.ReasonCode}");
                            Assert.True(open.Remove(comp.PacketIdentifier), $"PUBCOMP for {comp.PacketIdentifier}, which is not open");
                            break;
                        case var other:
                            Assert.Fail($"the publisher got {other?.ToString() ?? "its connection closed"} while completing its resends");
                            break;
                    }
                }
                // the marker comes after every message in the subscriber's queue
                await CompleteQos2PublishAsync(again, MarkerId, "marker");
            }

            var deliveries = await ReceiveUntilMarkerAsync(restartPort, version, "qos2crash-subscriber");
            output.WriteLine($"{moment} {version}: delivered {string.Join(", ", deliveries.Select(d => $"{d.Key}x{d.Value}"))}");
            for (ushort id = 1; id <= Completed + InFlight; id++)
            {
                Assert.True(deliveries.GetValueOrDefault(Payload(id)) == 1,
                    $"{Payload(id)} was delivered {deliveries.GetValueOrDefault(Payload(id))} times, not exactly once ({moment}, {version})");
            }
            Assert.Equal(Completed + InFlight + 1, deliveries.Count);
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public async Task Outbound_PUBREL_to_an_online_subscriber_is_resent_after_a_crash_and_the_message_is_not_delivered_twice(MqttProtocolVersion version)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("iotrt-pubrelcrash-").FullName;
        try
        {
            ushort pendingId;
            var port = BrokerProcess.FreePort();
            await using (var broker = await BrokerProcess.StartAsync(dataDirectory, port))
            {
                var (subscriber, _) = await ConnectPersistentAsync(port, version, "pubrel-subscriber");
                await using (subscriber)
                {
                    await SubscribeAsync(subscriber, "pubrel/#");
                    var (publisher, _) = await ConnectPersistentAsync(port, version, "pubrel-publisher");
                    await using (publisher)
                    {
                        await CompleteQos2PublishAsync(publisher, 1, "once", topic: "pubrel/once");
                        var publish = await subscriber.ReceiveAsync<MqttPublishPacket>(Timeouts.Default);
                        Assert.Equal("once", Encoding.UTF8.GetString(publish.Payload.ToArray()));
                        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, publish.QualityOfServiceLevel);
                        pendingId = publish.PacketIdentifier;
                        await subscriber.SendAsync(new MqttPubRecPacket { PacketIdentifier = pendingId });
                        var rel = await subscriber.ReceiveAsync<MqttPubRelPacket>(Timeouts.Default);
                        Assert.Equal(pendingId, rel.PacketIdentifier);
                        // PUBREL leaves as soon as its state is recorded; a durable acknowledgement decided after it is
                        // sent only once the log holds that record too (IBrokerStore's ordering): then kill, before PUBCOMP
                        await publisher.SendAsync(new MqttPublishPacket { Topic = "barrier", PayloadSegment = "b"u8.ToArray(), QualityOfServiceLevel = MqttQualityOfServiceLevel.AtLeastOnce, PacketIdentifier = 2 });
                        await publisher.ReceiveAsync<MqttPubAckPacket>(Timeouts.Default);
                        broker.Kill();
                        await broker.WaitForExitAsync(TimeSpan.FromSeconds(10));
                    }
                }
            }

            var restartPort = BrokerProcess.FreePort();
            await using var restarted = await BrokerProcess.StartAsync(dataDirectory, restartPort);
            var (again, connAck) = await ConnectPersistentAsync(restartPort, version, "pubrel-subscriber");
            await using (again)
            {
                Assert.True(connAck.IsSessionPresent, "the subscriber's session survived the crash");
                var first = await again.ReceiveAsync(Timeouts.Default);
                var resent = Assert.IsType<MqttPubRelPacket>(first, exactMatch: false);
                Assert.Equal(pendingId, resent.PacketIdentifier);
                await again.SendAsync(new MqttPubCompPacket { PacketIdentifier = pendingId });

                var (publisher, _) = await ConnectPersistentAsync(restartPort, version, "pubrel-publisher");
                await using (publisher)
                {
                    await CompleteQos2PublishAsync(publisher, 3, "marker", topic: "pubrel/marker");
                }
                // nothing but the marker may come now: "once" again would be a second delivery
                var next = await again.ReceiveAsync<MqttPublishPacket>(Timeouts.Default);
                Assert.Equal("pubrel/marker", next.Topic);
                Assert.Equal("marker", Encoding.UTF8.GetString(next.Payload.ToArray()));
            }
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    static string Payload(ushort id) => $"m{id}";

    static MqttPublishPacket Publish(ushort id, string payload, bool dup, string? topic = null) => new()
    {
        Topic = topic ?? $"qos2/{payload}",
        PayloadSegment = Encoding.UTF8.GetBytes(payload),
        QualityOfServiceLevel = MqttQualityOfServiceLevel.ExactlyOnce,
        PacketIdentifier = id,
        Dup = dup,
    };

    static Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectPersistentAsync(int port, MqttProtocolVersion version, string clientId) =>
        RawMqttClient.ConnectAsync(port, clientId, version, cleanStart: false, configure: c => c.SessionExpiryInterval = 3600);

    static async Task SubscribeAsync(RawMqttClient client, string filter)
    {
        await client.SendAsync(new MqttSubscribePacket
        {
            PacketIdentifier = 1,
            TopicFilters = [new MqttTopicFilter { Topic = filter, QualityOfServiceLevel = MqttQualityOfServiceLevel.ExactlyOnce }],
        });
        await client.ReceiveAsync<MqttSubAckPacket>(Timeouts.Default);
    }

    static async Task SubscribeThenGoOfflineAsync(int port, MqttProtocolVersion version, string clientId, string filter)
    {
        var (subscriber, _) = await ConnectPersistentAsync(port, version, clientId);
        await using (subscriber)
        {
            await SubscribeAsync(subscriber, filter);
            await subscriber.SendAsync(new MqttDisconnectPacket());
            await subscriber.ExpectClosedAsync(Timeouts.Default);
        }
    }

    static async Task CompleteQos2PublishAsync(RawMqttClient client, ushort id, string payload, string? topic = null)
    {
        await client.SendAsync(Publish(id, payload, dup: false, topic));
        var rec = await client.ReceiveAsync<MqttPubRecPacket>(Timeouts.Default);
        Assert.Equal(id, rec.PacketIdentifier);
        Assert.Equal(MqttPubRecReasonCode.Success, rec.ReasonCode);
        await client.SendAsync(new MqttPubRelPacket { PacketIdentifier = id });
        var comp = await client.ReceiveAsync<MqttPubCompPacket>(Timeouts.Default);
        Assert.Equal(id, comp.PacketIdentifier);
    }

    /// <summary>The persistent subscriber comes back and takes its queue, completing each QoS 2 flow, until the marker; counts each payload.</summary>
    static async Task<Dictionary<string, int>> ReceiveUntilMarkerAsync(int port, MqttProtocolVersion version, string clientId)
    {
        var (subscriber, connAck) = await ConnectPersistentAsync(port, version, clientId);
        await using var _ = subscriber;
        Assert.True(connAck.IsSessionPresent, "the subscriber's session survived the crash");
        var deliveries = new Dictionary<string, int>();
        // a spec receiver (method B): a PUBLISH whose id it holds until PUBREL is a duplicate, not a new delivery
        var held = new HashSet<ushort>();
        while (true)
        {
            switch (await subscriber.ReceiveAsync(Timeouts.Default))
            {
                case MqttPublishPacket publish:
                    Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, publish.QualityOfServiceLevel);
                    var payload = Encoding.UTF8.GetString(publish.Payload.ToArray());
                    if (held.Add(publish.PacketIdentifier))
                    {
                        deliveries[payload] = deliveries.GetValueOrDefault(payload) + 1;
                    }
                    await subscriber.SendAsync(new MqttPubRecPacket { PacketIdentifier = publish.PacketIdentifier });
                    break;
                case MqttPubRelPacket rel:
                    held.Remove(rel.PacketIdentifier);
                    await subscriber.SendAsync(new MqttPubCompPacket { PacketIdentifier = rel.PacketIdentifier });
                    if (deliveries.ContainsKey("marker") && held.Count == 0)
                    {
                        return deliveries;
                    }
                    break;
                case var other:
                    Assert.Fail($"the subscriber got {other?.ToString() ?? "its connection closed"} before the marker");
                    break;
            }
        }
    }
}
