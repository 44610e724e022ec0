using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Testing;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// A subscriber's queue is a byte budget (Broker:MaxQueuedBytes) with a message cap as a second guard: it absorbs bursts
/// and stalls whole, holds no more than its budget for a client that stops reading, and that client is disconnected
/// after Broker:WriteStallTimeoutSeconds while everyone else keeps receiving.
/// </summary>
public sealed class QueueBudgetTests
{
    [Fact]
    public async Task Burst_from_fifty_publishers_reaches_one_subscriber_whole_with_default_limits()
    {
        const int Publishers = 50;
        const int PerPublisher = 1000;
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sink");
        await using var _s = sub;
        await sub.SendAsync(Subscribe(1, "burst/#", MqttQualityOfServiceLevel.AtMostOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();

        var publishers = new List<RawMqttClient>();
        try
        {
            for (var p = 0; p < Publishers; p++)
            {
                publishers.Add((await RawMqttClient.ConnectAsync(server.Port, $"pub{p}")).Client);
            }
            // every publisher writes its whole burst without waiting: far more than the old 1,000-message queue held
            await Task.WhenAll(publishers.Select((pub, p) => Task.Run(async () =>
            {
                var frames = new MemoryStream();
                for (var i = 0; i < PerPublisher; i++)
                {
                    frames.Write(Encode(Publish($"burst/{p}", $"{p}:{i}", MqttQualityOfServiceLevel.AtMostOnce)));
                }
                await pub.SendRawAsync(frames.ToArray());
            })));
            foreach (var (pub, p) in publishers.Select((pub, p) => (pub, p)))
            {
                // a QoS 0 marker on each publisher's own topic: it is routed after that publisher's burst
                await pub.SendAsync(Publish($"burst/{p}", $"{p}:end", MqttQualityOfServiceLevel.AtMostOnce));
            }

            var next = new int[Publishers];
            var ended = 0;
            while (ended < Publishers)
            {
                var publish = await sub.ReceiveAsync<MqttPublishPacket>(TimeSpan.FromSeconds(30));
                var parts = publish.Text().Split(':');
                var p = int.Parse(parts[0]);
                if (parts[1] == "end")
                {
                    ended++;
                    continue;
                }
                // in order per publisher, none missing
                Assert.Equal(next[p], int.Parse(parts[1]));
                next[p]++;
            }
            Assert.All(next, n => Assert.Equal(PerPublisher, n));
            Assert.Equal(0, server.Broker.Dropped(DropReason.QueueFull));
        }
        finally
        {
            foreach (var pub in publishers)
            {
                await pub.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Offline_queue_keeps_the_newest_messages_that_fit_its_byte_budget()
    {
        const int Budget = 8 * 1024;
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxQueuedBytes = Budget });
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "offline", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        await sub.SendAsync(Subscribe(1, "big/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        await sub.DisposeAsync();

        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await using var _p = pub;
        var payload = new string('x', 1000);
        for (ushort i = 1; i <= 40; i++)
        {
            await pub.SendAsync(Publish("big/a", $"{i:D3}{payload}", MqttQualityOfServiceLevel.AtLeastOnce, i));
            await pub.ReceiveAsync<MqttPubAckPacket>();
        }
        // each message costs its 1,003-byte payload, its topic and the delivery's bookkeeping
        Assert.InRange(server.Broker.QueuedBytesTotal(), Budget - 1200, Budget);

        var (back, _) = await RawMqttClient.ConnectAsync(server.Port, "offline", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        await using var _b = back;
        var received = new List<int>();
        await pub.SendAsync(Publish("big/a", "end", MqttQualityOfServiceLevel.AtLeastOnce, 41));
        while (true)
        {
            var publish = await back.ReceiveAsync<MqttPublishPacket>();
            await back.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
            if (publish.Text() == "end")
            {
                break;
            }
            received.Add(int.Parse(publish.Text()[..3]));
        }
        // DropOldest by bytes: the newest seven 1 KB messages fit 8 KiB, in order
        Assert.Equal(Enumerable.Range(34, 7), received);
    }

    [Fact]
    public async Task Client_that_never_reads_is_held_to_its_budget_and_disconnected_while_others_get_everything()
    {
        const int Budget = 256 * 1024;
        const int Count = 3000;
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:MaxQueuedBytes"] = Budget.ToString(),
            ["Broker:WriteStallTimeoutSeconds"] = "2",
            ["Broker:SysInterval"] = "0",
        });
        var mqtt = broker.Host.Broker;
        var (stuck, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "never-reads", receiveBuffer: 4096);
        await using var _st = stuck;
        await stuck.SendAsync(Subscribe(1, "feed/#", MqttQualityOfServiceLevel.AtMostOnce));
        await stuck.ReceiveAsync<MqttSubAckPacket>();
        var (good, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "reads");
        await using var _g = good;
        await good.SendAsync(Subscribe(1, "feed/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await good.ReceiveAsync<MqttSubAckPacket>();

        var (pub, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "pub");
        await using var _p = pub;
        var payload = new string('y', 1000);
        var maxQueued = 0L;
        for (var i = 0; i < Count; i++)
        {
            // 3 MB in all: far beyond the stuck client's socket buffers and its 256 KiB budget. Closed loop on the
            // reading subscriber (the next message only after it got this one), so its own queue never holds more than one
            await pub.SendAsync(Publish("feed/a", $"{i:D5}{payload}", MqttQualityOfServiceLevel.AtLeastOnce, (ushort)(i % 60000 + 1)));
            var publish = await good.ReceiveAsync<MqttPublishPacket>(TimeSpan.FromSeconds(30));
            await good.SendAsync(new MqttPubAckPacket { PacketIdentifier = publish.PacketIdentifier });
            Assert.Equal(i, int.Parse(publish.Text()[..5]));
            await pub.ReceiveAsync<MqttPubAckPacket>();
            maxQueued = Math.Max(maxQueued, mqtt.QueuedBytesTotal());
        }
        Assert.InRange(maxQueued, 1, Budget + 2 * 1200);

        // the stuck client is cut off once its socket took nothing for the stall timeout
        await Wait.UntilAsync(() => mqtt.Metrics.WriteStallDisconnects > 0, TimeSpan.FromSeconds(30), "the client that never reads is disconnected");
        Assert.Equal(1, mqtt.Metrics.WriteStallDisconnects);
        await Wait.UntilAsync(() => mqtt.ConnectedClients == 2, TimeSpan.FromSeconds(10), "only the reading subscriber and the publisher stay connected");
    }

    [Fact]
    public async Task Writer_waits_for_an_acknowledgement_when_the_clients_window_is_full_instead_of_spinning()
    {
        await using var server = EngineServer.Start();
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "slow", configure: c => c.ReceiveMaximum = 2);
        await using var _s = sub;
        await sub.SendAsync(Subscribe(1, "win/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await using var _p = pub;
        for (ushort i = 1; i <= 10; i++)
        {
            await pub.SendAsync(Publish("win/a", $"m{i}", MqttQualityOfServiceLevel.AtLeastOnce, i));
            await pub.ReceiveAsync<MqttPubAckPacket>();
        }
        // the window (2) is full and 8 wait: nothing can be written until the client acknowledges
        var first = await sub.ReceiveAsync<MqttPublishPacket>();
        await sub.ReceiveAsync<MqttPublishPacket>();
        var rounds = server.Broker.WriteRoundsOf("slow");
        // a PINGREQ round trip takes one more round of the writer; a writer that spins on the full window makes thousands
        await sub.SendAsync(MqttPingReqPacket.Instance);
        await sub.ReceiveAsync<MqttPingRespPacket>();
        Assert.InRange(server.Broker.WriteRoundsOf("slow") - rounds, 1, 5);
        // and the acknowledgement lets the next one out
        await sub.SendAsync(new MqttPubAckPacket { PacketIdentifier = first.PacketIdentifier });
        Assert.Equal("m3", (await sub.ReceiveAsync<MqttPublishPacket>()).Text());
    }
}
