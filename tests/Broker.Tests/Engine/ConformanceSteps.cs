using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>Complete protocol exchanges (subscribe + SUBACK, publish + its acknowledgements, receive + acknowledge) for the conformance tests.</summary>
internal static class ConformanceSteps
{
    /// <summary>Subscribes to one filter and returns the SUBACK.</summary>
    public static async Task<MqttSubAckPacket> SubscribeAsync(
        this RawMqttClient client, ushort packetId, string filter, MqttQualityOfServiceLevel qos, uint subscriptionId = 0, Action<MqttTopicFilter>? configure = null)
    {
        var topicFilter = new MqttTopicFilter { Topic = filter, QualityOfServiceLevel = qos };
        configure?.Invoke(topicFilter);
        await client.SendAsync(new MqttSubscribePacket { PacketIdentifier = packetId, SubscriptionIdentifier = subscriptionId, TopicFilters = [topicFilter] });
        var subAck = await client.ReceiveAsync<MqttSubAckPacket>();
        Assert.Equal(packetId, subAck.PacketIdentifier);
        return subAck;
    }

    /// <summary>Subscribes and asserts the subscription was granted at <paramref name="qos"/>.</summary>
    public static async Task SubscribeGrantedAsync(
        this RawMqttClient client, ushort packetId, string filter, MqttQualityOfServiceLevel qos, uint subscriptionId = 0, Action<MqttTopicFilter>? configure = null)
    {
        var subAck = await client.SubscribeAsync(packetId, filter, qos, subscriptionId, configure);
        Assert.Equal((MqttSubscribeReasonCode)(int)qos, Assert.Single(subAck.ReasonCodes));
    }

    public static async Task UnsubscribeAsync(this RawMqttClient client, ushort packetId, string filter)
    {
        await client.SendAsync(new MqttUnsubscribePacket { PacketIdentifier = packetId, TopicFilters = [filter] });
        var unsubAck = await client.ReceiveAsync<MqttUnsubAckPacket>();
        Assert.Equal(packetId, unsubAck.PacketIdentifier);
    }

    /// <summary>
    /// Publishes and completes the QoS flow, so the broker has routed the message when this returns. At QoS 1 and 2 the
    /// publisher must not itself subscribe to the topic: the echo of its own message may come before the acknowledgement.
    /// </summary>
    public static async Task PublishAsync(
        this RawMqttClient client, string topic, string payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce,
        ushort packetId = 1, bool retain = false, Action<MqttPublishPacket>? configure = null)
    {
        var publish = new MqttPublishPacket
        {
            Topic = topic,
            PayloadSegment = Encoding.UTF8.GetBytes(payload),
            QualityOfServiceLevel = qos,
            PacketIdentifier = qos == MqttQualityOfServiceLevel.AtMostOnce ? (ushort)0 : packetId,
            Retain = retain,
        };
        configure?.Invoke(publish);
        await client.SendAsync(publish);
        switch (qos)
        {
            case MqttQualityOfServiceLevel.AtLeastOnce:
                Assert.Equal(packetId, (await client.ReceiveAsync<MqttPubAckPacket>()).PacketIdentifier);
                break;
            case MqttQualityOfServiceLevel.ExactlyOnce:
                Assert.Equal(packetId, (await client.ReceiveAsync<MqttPubRecPacket>()).PacketIdentifier);
                await client.SendAsync(new MqttPubRelPacket { PacketIdentifier = packetId });
                Assert.Equal(packetId, (await client.ReceiveAsync<MqttPubCompPacket>()).PacketIdentifier);
                break;
        }
    }

    /// <summary>Receives the next PUBLISH and acknowledges it as a well-behaved client does.</summary>
    public static async Task<MqttPublishPacket> ReceivePublishAsync(this RawMqttClient client, TimeSpan? timeout = null)
    {
        var publish = await client.ReceiveAsync<MqttPublishPacket>(timeout);
        switch (publish.QualityOfServiceLevel)
        {
            case MqttQualityOfServiceLevel.AtLeastOnce:
                await client.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
                break;
            case MqttQualityOfServiceLevel.ExactlyOnce:
                await client.SendAsync(new MqttPubRecPacket { PacketIdentifier = publish.PacketIdentifier });
                Assert.Equal(publish.PacketIdentifier, (await client.ReceiveAsync<MqttPubRelPacket>()).PacketIdentifier);
                await client.SendAsync(new MqttPubCompPacket { PacketIdentifier = publish.PacketIdentifier });
                break;
        }
        return publish;
    }

    /// <summary>
    /// Receives <paramref name="count"/> PUBLISH packets in arrival order, acknowledging each; QoS 2 flows may interleave with
    /// later PUBLISHes, and every PUBREL is answered before this returns.
    /// </summary>
    public static async Task<List<MqttPublishPacket>> ReceivePublishesAsync(this RawMqttClient client, int count, TimeSpan? timeout = null)
    {
        var received = new List<MqttPublishPacket>(count);
        var awaitingRelease = new HashSet<ushort>();
        while (received.Count < count || awaitingRelease.Count > 0)
        {
            var packet = await client.ReceiveAsync(timeout)
                ?? throw new Xunit.Sdk.XunitException($"Connection closed after {received.Count} of {count} messages.");
            switch (packet)
            {
                case MqttPublishPacket publish:
                    received.Add(publish);
                    if (publish.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtLeastOnce)
                    {
                        await client.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
                    }
                    else if (publish.QualityOfServiceLevel == MqttQualityOfServiceLevel.ExactlyOnce)
                    {
                        awaitingRelease.Add(publish.PacketIdentifier);
                        await client.SendAsync(new MqttPubRecPacket { PacketIdentifier = publish.PacketIdentifier });
                    }
                    break;
                case MqttPubRelPacket release:
                    Assert.True(awaitingRelease.Remove(release.PacketIdentifier), $"PUBREL for unknown packet id {release.PacketIdentifier}");
                    await client.SendAsync(new MqttPubCompPacket { PacketIdentifier = release.PacketIdentifier });
                    break;
                default:
                    throw new Xunit.Sdk.XunitException($"Expected PUBLISH or PUBREL, got {packet}");
            }
        }
        return received;
    }

    /// <summary>The topics marker messages go to: <see cref="ReceiveUntilMarkerAsync"/> and test sinks that let them through.</summary>
    public const string MarkerPrefix = "marker/";

    /// <summary>
    /// Reads every PUBLISH on its way to <paramref name="client"/>, up to a marker: the client subscribes (QoS 0) to a
    /// topic of its own, then <paramref name="publisher"/> (the client itself when null) publishes to it at QoS 0. The
    /// broker routes the marker after everything that publisher sent before it and after everything already queued for
    /// the client (one session's deliveries keep their order), so the list is complete however slow the machine, unlike
    /// a quiet period. QoS 1 and 2 PUBLISHes in it are not acknowledged.
    /// </summary>
    public static async Task<List<MqttPublishPacket>> ReceiveUntilMarkerAsync(this RawMqttClient client, RawMqttClient? publisher = null)
    {
        const ushort subscribeId = 0xFFF0;
        var marker = MarkerPrefix + Guid.NewGuid().ToString("N");
        await client.SendAsync(new MqttSubscribePacket
        {
            PacketIdentifier = subscribeId,
            TopicFilters = [new MqttTopicFilter { Topic = marker, QualityOfServiceLevel = MqttQualityOfServiceLevel.AtMostOnce }],
        });
        var before = new List<MqttPublishPacket>();
        var subscribed = false;
        while (true)
        {
            var packet = await client.ReceiveAsync(Timeouts.Default)
                ?? throw new Xunit.Sdk.XunitException($"The connection closed before the marker arrived, after {before.Count} PUBLISH(es).");
            switch (packet)
            {
                case MqttSubAckPacket subAck when subAck.PacketIdentifier == subscribeId && !subscribed:
                    Assert.Equal(MqttSubscribeReasonCode.GrantedQoS0, Assert.Single(subAck.ReasonCodes));
                    subscribed = true;
                    await (publisher ?? client).PublishAsync(marker, "marker", MqttQualityOfServiceLevel.AtMostOnce);
                    break;
                case MqttPublishPacket publish when publish.Topic == marker:
                    return before;
                case MqttPublishPacket publish:
                    before.Add(publish);
                    break;
                default:
                    throw new Xunit.Sdk.XunitException($"Expected PUBLISH or the marker's SUBACK, got {packet}");
            }
        }
    }

    /// <summary>Proves no PUBLISH is on its way to <paramref name="client"/>: none arrives before a marker (see <see cref="ReceiveUntilMarkerAsync"/>).</summary>
    public static async Task ExpectNothingBeforeMarkerAsync(this RawMqttClient client, RawMqttClient? publisher = null)
    {
        var before = await client.ReceiveUntilMarkerAsync(publisher);
        Assert.True(before.Count == 0, $"Expected nothing before the marker, got: {string.Join(", ", before.Select(p => $"{p.Topic} '{p.Text()}'"))}");
    }

    /// <summary>Sends DISCONNECT (optionally with a reason code) and waits for the broker to close the connection.</summary>
    public static async Task DisconnectAsync(this RawMqttClient client, MqttDisconnectReasonCode reason = MqttDisconnectReasonCode.NormalDisconnection, uint? sessionExpiry = null)
    {
        var disconnect = new MqttDisconnectPacket { ReasonCode = reason };
        if (sessionExpiry is { } expiry)
        {
            disconnect.SessionExpiryInterval = expiry;
        }
        await client.SendAsync(disconnect);
        await client.ExpectClosedAsync();
        await client.DisposeAsync();
    }
}
