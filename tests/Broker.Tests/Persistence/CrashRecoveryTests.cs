using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using Xunit.Abstractions;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>
/// Nothing acknowledged is lost: the broker process is killed with SIGKILL while a client publishes QoS 1 and 2 at
/// load, then restarted on the same data directory. Every message the publisher saw acknowledged reaches the
/// persistent subscriber, QoS 2 ones exactly once, and the retained message is intact.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class CrashRecoveryTests(ITestOutputHelper output)
{
    const string SubscriberId = "crash-subscriber";
    const int MaxMessages = 20_000;

    [Theory]
    [InlineData("Fsync", 1, 300)]
    [InlineData("Fsync", 2, 600)]
    [InlineData("Write", 3, 150)]
    [InlineData("Write", 4, 450)]
    public async Task Acknowledged_messages_survive_kill_9(string durability, int seed, int killAfterMs)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("iotrt-crash-").FullName;
        try
        {
            var port = FreePort();
            await using (var broker = await StartBrokerAsync(dataDirectory, durability, port))
            {
                // the persistent subscriber subscribes, then goes offline: everything published queues in its session
                var (subscriber, _) = await RawMqttClient.ConnectAsync(port, SubscriberId, cleanStart: false, configure: c => c.SessionExpiryInterval = 3600);
                await subscriber.SendAsync(new MqttSubscribePacket
                {
                    PacketIdentifier = 1,
                    TopicFilters = [new MqttTopicFilter { Topic = "crash/#", QualityOfServiceLevel = MqttQualityOfServiceLevel.ExactlyOnce }],
                });
                await subscriber.ReceiveAsync<MqttSubAckPacket>();
                await subscriber.SendAsync(new MqttDisconnectPacket());
                await subscriber.DisposeAsync();

                var (retainer, _) = await RawMqttClient.ConnectAsync(port, "retainer");
                await retainer.SendAsync(Publish("state/retained", "kept across the crash", MqttQualityOfServiceLevel.AtLeastOnce, 1, retain: true));
                await retainer.ReceiveAsync<MqttPubAckPacket>();
                await retainer.DisposeAsync();

                var acknowledged = new ConcurrentDictionary<int, MqttQualityOfServiceLevel>();
                var (publisher, _) = await RawMqttClient.ConnectAsync(port, "crash-publisher");
                using var load = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                var publishing = PublishUntilKilledAsync(publisher, acknowledged, load.Token);
                var killAt = DateTime.UtcNow.AddMilliseconds(killAfterMs + new Random(seed).Next(0, 200));
                await Wait.UntilAsync(() => DateTime.UtcNow >= killAt, TimeSpan.FromSeconds(5), "the kill moment");
                broker.Kill(); // SIGKILL: no shutdown, no flush
                await broker.WaitForExitAsync(TimeSpan.FromSeconds(10));
                await load.CancelAsync();
                await publishing;
                await publisher.DisposeAsync();
                output.WriteLine($"{durability}: {acknowledged.Count} messages acknowledged before the kill at ~{killAfterMs} ms");
                Assert.True(acknowledged.Count > 0, "the publisher saw acknowledgements before the kill");

                var restartPort = FreePort();
                await using var restarted = await StartBrokerAsync(dataDirectory, durability, restartPort);
                var (again, connAck) = await RawMqttClient.ConnectAsync(restartPort, SubscriberId, cleanStart: false, configure: c =>
                {
                    c.SessionExpiryInterval = 3600;
                    c.ReceiveMaximum = 1000;
                });
                Assert.True(connAck.IsSessionPresent, "the persistent session survived the crash");
                var received = new Dictionary<int, int>();
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (!acknowledged.Keys.All(received.ContainsKey))
                {
                    if (DateTime.UtcNow > deadline)
                    {
                        var missing = acknowledged.Keys.Where(k => !received.ContainsKey(k)).Order().Take(20);
                        Assert.Fail($"acknowledged messages missing after restart: {string.Join(", ", missing)} (received {received.Count} of {acknowledged.Count})");
                    }
                    await HandleAsync(again, await again.ReceiveAsync(TimeSpan.FromSeconds(10)), received);
                }
                // nothing more may come for QoS 2 messages: look for duplicates for a moment (bounded negative check)
                await DrainAsync(again, received, TimeSpan.FromMilliseconds(500));
                var duplicatedQos2 = acknowledged.Where(a => a.Value == MqttQualityOfServiceLevel.ExactlyOnce && received[a.Key] > 1).Select(a => a.Key).ToList();
                Assert.True(duplicatedQos2.Count == 0, $"QoS 2 messages delivered more than once: {string.Join(", ", duplicatedQos2)}");

                var (checker, _) = await RawMqttClient.ConnectAsync(restartPort, "checker");
                await checker.SendAsync(new MqttSubscribePacket { PacketIdentifier = 1, TopicFilters = [new MqttTopicFilter { Topic = "state/#" }] });
                await checker.ReceiveAsync<MqttSubAckPacket>();
                var retained = await checker.ReceiveAsync<MqttPublishPacket>();
                Assert.True(retained.Retain);
                Assert.Equal("kept across the crash", Encoding.UTF8.GetString(retained.Payload.ToArray()));
            }
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    /// <summary>Publishes QoS 1 and 2 alternately with up to 100 in flight; records each sequence number once acknowledged.</summary>
    static async Task PublishUntilKilledAsync(RawMqttClient publisher, ConcurrentDictionary<int, MqttQualityOfServiceLevel> acknowledged, CancellationToken stop)
    {
        var window = new SemaphoreSlim(100);
        var inflight = new ConcurrentDictionary<ushort, (int Seq, MqttQualityOfServiceLevel QoS)>();
        var reader = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                MqttPacket? packet;
                try
                {
                    packet = await publisher.ReceiveAsync(TimeSpan.FromSeconds(30));
                }
                catch (Exception)
                {
                    return;
                }
                switch (packet)
                {
                    case null:
                        return; // the broker died
                    case MqttPubAckPacket ack when inflight.TryRemove(ack.PacketIdentifier, out var one) && ack.ReasonCode == MqttPubAckReasonCode.Success:
                        acknowledged[one.Seq] = one.QoS;
                        window.Release();
                        break;
                    case MqttPubRecPacket rec when inflight.TryGetValue(rec.PacketIdentifier, out var two) && rec.ReasonCode == MqttPubRecReasonCode.Success:
                        // PUBREC is the broker's promise for a QoS 2 message
                        acknowledged[two.Seq] = two.QoS;
                        _ = publisher.SendAsync(new MqttPubRelPacket { PacketIdentifier = rec.PacketIdentifier });
                        break;
                    case MqttPubCompPacket comp when inflight.TryRemove(comp.PacketIdentifier, out _):
                        window.Release();
                        break;
                }
            }
        });
        try
        {
            for (var seq = 1; seq <= MaxMessages && !stop.IsCancellationRequested; seq++)
            {
                await window.WaitAsync(stop);
                var id = (ushort)((seq % 60000) + 1);
                var qos = seq % 2 == 0 ? MqttQualityOfServiceLevel.ExactlyOnce : MqttQualityOfServiceLevel.AtLeastOnce;
                inflight[id] = (seq, qos);
                await publisher.SendAsync(Publish("crash/load", seq.ToString(), qos, id));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or TimeoutException)
        {
            // the broker was killed under us
        }
        await reader;
    }

    static async Task AcknowledgeAsync(RawMqttClient client, MqttPublishPacket packet)
    {
        if (packet.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtLeastOnce)
        {
            await client.SendAsync(new MqttPubAckPacket { PacketIdentifier = packet.PacketIdentifier });
        }
        else if (packet.QualityOfServiceLevel == MqttQualityOfServiceLevel.ExactlyOnce)
        {
            await client.SendAsync(new MqttPubRecPacket { PacketIdentifier = packet.PacketIdentifier });
        }
    }

    static async Task DrainAsync(RawMqttClient client, Dictionary<int, int> received, TimeSpan quiet)
    {
        while (true)
        {
            MqttPacket? packet;
            try
            {
                packet = await client.ReceiveAsync(quiet);
            }
            catch (TimeoutException)
            {
                return;
            }
            if (packet is null)
            {
                return;
            }
            await HandleAsync(client, packet, received);
        }
    }

    /// <summary>The subscriber's side: counts each delivered sequence number and completes the QoS flows.</summary>
    static async Task HandleAsync(RawMqttClient client, MqttPacket? packet, Dictionary<int, int> received)
    {
        switch (packet)
        {
            case null:
                Assert.Fail("the broker closed the subscriber's connection");
                break;
            case MqttPublishPacket publish:
                var seq = int.Parse(Encoding.UTF8.GetString(publish.Payload.ToArray()));
                received[seq] = received.GetValueOrDefault(seq) + 1;
                await AcknowledgeAsync(client, publish);
                break;
            case MqttPubRelPacket rel:
                await client.SendAsync(new MqttPubCompPacket { PacketIdentifier = rel.PacketIdentifier });
                break;
        }
    }

    static MqttPublishPacket Publish(string topic, string payload, MqttQualityOfServiceLevel qos, ushort id, bool retain = false) => new()
    {
        Topic = topic,
        PayloadSegment = Encoding.UTF8.GetBytes(payload),
        QualityOfServiceLevel = qos,
        PacketIdentifier = id,
        Retain = retain,
    };

    async Task<ExternalProcess> StartBrokerAsync(string dataDirectory, string durability, int port)
    {
        var broker = await BrokerProcess.StartAsync(dataDirectory, port, $"Store:Durability={durability}", "Broker:MaxQueuedMessages=100000");
        output.WriteLine($"broker pid {broker.Id} on port {port} ({durability})");
        return broker;
    }

    static int FreePort() => BrokerProcess.FreePort();
}
