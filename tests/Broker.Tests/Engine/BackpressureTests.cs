using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Testing;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// Broker:QueueOverflowPolicy=Backpressure: a publisher that overfills an online subscriber's queue is not read until
/// that subscriber drains, so nothing is dropped and the queue stays within its budget; the hold ends when the subscriber
/// goes offline, and a subscriber that never drains costs the publisher one timeout. The subscriber here is an MQTT 5
/// client with a receive window of 10 that withholds its PUBACKs, so the broker cannot drain its queue until it does.
/// </summary>
public sealed class BackpressureTests
{
    const int Budget = 64 * 1024;
    const int Count = 2000;
    static readonly string Payload = new('p', 1000);

    static BrokerOptions Options(int timeoutSeconds = 600) => new()
    {
        SysInterval = 0,
        MaxQueuedBytes = Budget,
        QueueOverflowPolicy = QueueOverflowPolicy.Backpressure,
        BackpressureTimeoutSeconds = timeoutSeconds,
        WriteStallTimeoutSeconds = 0,
    };

    /// <summary>2 MB of QoS 1 publishes in one write (ids reused after their PUBACK), then a PINGREQ read only after all of them.</summary>
    static byte[] Burst()
    {
        var frames = new MemoryStream();
        for (var i = 0; i < Count; i++)
        {
            frames.Write(Encode(Publish("bp/a", $"{i:D5}{Payload}", MqttQualityOfServiceLevel.AtLeastOnce, (ushort)(i % 500 + 1))));
        }
        frames.Write([0xC0, 0x00]);
        return frames.ToArray();
    }

    static async Task<RawMqttClient> SubscribeAsync(EngineServer server, string clientId, bool persistent = false)
    {
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, clientId, cleanStart: !persistent, configure: c =>
        {
            c.ReceiveMaximum = 10;
            c.SessionExpiryInterval = persistent ? 300u : 0u;
        });
        await sub.SendAsync(Subscribe(1, "bp/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        return sub;
    }

    /// <summary>Reads the publisher's PUBACKs up to the PINGRESP that follows the burst.</summary>
    static async Task<int> ReadToPingResponseAsync(RawMqttClient pub)
    {
        var acks = 0;
        while (true)
        {
            var packet = await pub.ReceiveAsync(TimeSpan.FromSeconds(30));
            switch (packet)
            {
                case MqttPingRespPacket:
                    return acks;
                case MqttPubAckPacket:
                    acks++;
                    break;
                default:
                    throw new Xunit.Sdk.XunitException($"Expected PUBACK or PINGRESP, got {packet?.GetType().Name ?? "connection closed"}.");
            }
        }
    }

    [Fact]
    public async Task Publisher_is_held_back_while_a_subscriber_is_behind_and_nothing_is_dropped()
    {
        await using var server = EngineServer.Start(Options());
        await using var sub = await SubscribeAsync(server, "slow");
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await using var _p = pub;

        var sending = pub.SendRawAsync(Burst(), TimeSpan.FromSeconds(60));
        var answers = ReadToPingResponseAsync(pub);
        // the subscriber acknowledges nothing yet: the publisher was stopped at the high-water mark (half the budget) and
        // stays stopped while the queue is above the low-water mark (a quarter; the first 10 went out to the client)
        await Wait.UntilAsync(() => server.Broker.Metrics.BackpressureHeld == 1, TimeSpan.FromSeconds(30), "the publisher is held back");
        Assert.InRange(server.Broker.QueuedBytesTotal(), Budget / 4 + 1, Budget);
        Assert.False(answers.IsCompleted);

        for (var i = 0; i < Count; i++)
        {
            var publish = await sub.ReceiveAsync<MqttPublishPacket>(TimeSpan.FromSeconds(30));
            Assert.Equal(i, int.Parse(publish.Text()[..5]));
            await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
        }
        await sending;
        Assert.Equal(Count, await answers);
        Assert.Equal(0, server.Broker.Dropped(DropReason.QueueFull));
        Assert.Equal(0, server.Broker.Metrics.BackpressureTimeouts);
        Assert.Equal(0, server.Broker.Metrics.BackpressureHeld);
    }

    [Fact]
    public async Task Held_back_publisher_is_read_again_when_the_subscriber_goes_offline()
    {
        await using var server = EngineServer.Start(Options());
        // a persistent session: it outlives the connection, and its queue (now offline) no longer holds anyone back
        var sub = await SubscribeAsync(server, "leaves", persistent: true);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await using var _p = pub;

        var sending = pub.SendRawAsync(Burst(), TimeSpan.FromSeconds(60));
        var answers = ReadToPingResponseAsync(pub);
        await Wait.UntilAsync(() => server.Broker.Metrics.BackpressureHeld == 1, TimeSpan.FromSeconds(30), "the publisher is held back");
        await sub.DisposeAsync();

        // answered long before the 600 s timeout: the hold ended with the subscriber
        Assert.Equal(Count, await answers);
        await sending;
        Assert.Equal(0, server.Broker.Metrics.BackpressureTimeouts);
    }

    [Fact]
    public async Task Subscriber_that_never_drains_costs_the_publisher_one_timeout_and_keeps_to_its_budget()
    {
        await using var server = EngineServer.Start(Options(timeoutSeconds: 1));
        await using var stuck = await SubscribeAsync(server, "stuck");
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await using var _p = pub;

        var sending = pub.SendRawAsync(Burst(), TimeSpan.FromSeconds(60));
        Assert.Equal(Count, await ReadToPingResponseAsync(pub));
        await sending;
        // held back once, gave up once, then the queue dropped its oldest to stay within budget
        Assert.Equal(1, server.Broker.Metrics.BackpressureWaits);
        Assert.Equal(1, server.Broker.Metrics.BackpressureTimeouts);
        Assert.True(server.Broker.Dropped(DropReason.QueueFull) > 0);
        Assert.InRange(server.Broker.QueuedBytesTotal(), Budget / 2, Budget);
    }

    [Fact]
    public async Task Publisher_that_subscribes_to_its_own_topic_is_not_held_back_by_its_own_queue()
    {
        await using var server = EngineServer.Start(Options());
        await using var self = await SubscribeAsync(server, "self");

        var sending = self.SendRawAsync(Burst(), TimeSpan.FromSeconds(60));
        // it cannot acknowledge what it was sent while it is not read, so holding it back could only end in the timeout
        var publishes = 0;
        MqttPacket? packet;
        while ((packet = await self.ReceiveAsync(TimeSpan.FromSeconds(30))) is not MqttPingRespPacket)
        {
            if (packet is MqttPublishPacket)
            {
                publishes++;
            }
        }
        await sending;
        Assert.Equal(0, server.Broker.Metrics.BackpressureWaits);
        Assert.Equal(10, publishes);
        Assert.True(server.Broker.Dropped(DropReason.QueueFull) > 0);
    }
}
