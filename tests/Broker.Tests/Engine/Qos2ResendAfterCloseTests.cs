using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>
/// MQTT §4.3.3: a QoS 2 PUBLISH the broker did not acknowledge (refused, or cut off by a close) must be routed when
/// the client sends it again; only a routed one is de-duplicated. Every path that can refuse or close between receipt
/// and routing, each with the resend a real client makes.
/// </summary>
public sealed class Qos2ResendAfterCloseTests
{
    /// <summary>An accept stage the test scripts: each message's answer comes from <see cref="Answer"/>.</summary>
    sealed class ScriptedSink : IPublishStage
    {
        public Func<MqttMessage, CancellationToken, ValueTask<AcceptResult>> Answer { get; set; } = (_, _) => ValueTask.FromResult(AcceptResult.Accepted);

        public ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken) => Answer(message, cancellationToken);
    }

    static string Text(MqttMessage message) => System.Text.Encoding.UTF8.GetString(message.Payload.Span);

    /// <summary>A QoS 2 subscriber on "q2/#" that completes every flow and collects payloads.</summary>
    static async Task<RawMqttClient> SubscribeAsync(int port, MqttProtocolVersion version, string clientId = "sub", bool persistent = false)
    {
        var (sub, _) = await RawMqttClient.ConnectAsync(port, clientId, version, cleanStart: !persistent,
            configure: c => c.SessionExpiryInterval = persistent && version == MqttProtocolVersion.V500 ? 300u : 0u);
        await sub.SendAsync(Subscribe(1, "q2/#", MqttQualityOfServiceLevel.ExactlyOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        return sub;
    }

    /// <summary>Payloads the subscriber receives up to and including <paramref name="marker"/>; the marker is sent after everything else by the same publisher, so whatever was routed before it has arrived.</summary>
    static async Task<List<string>> ReceiveUntilAsync(RawMqttClient sub, string marker)
    {
        var payloads = new List<string>();
        while (true)
        {
            var packet = await sub.ReceiveAsync(TimeSpan.FromSeconds(10)) ?? throw new Xunit.Sdk.XunitException("The broker closed the subscriber.");
            switch (packet)
            {
                case MqttPublishPacket publish:
                    await sub.SendAsync(new MqttPubRecPacket { PacketIdentifier = publish.PacketIdentifier });
                    payloads.Add(publish.Text());
                    break;
                case MqttPubRelPacket rel:
                    await sub.SendAsync(new MqttPubCompPacket { PacketIdentifier = rel.PacketIdentifier });
                    if (payloads.Contains(marker))
                    {
                        return payloads;
                    }
                    break;
            }
        }
    }

    /// <summary>PUBLISH (optionally as a resend), PUBREC, PUBREL, PUBCOMP; returns the PUBREC's reason.</summary>
    static async Task<MqttPubRecReasonCode> PublishQos2Async(RawMqttClient client, string payload, ushort id, bool dup = false)
    {
        await client.SendAsync(Publish("q2/a", payload, MqttQualityOfServiceLevel.ExactlyOnce, id, dup));
        var rec = await client.ReceiveAsync<MqttPubRecPacket>();
        Assert.Equal(id, rec.PacketIdentifier);
        if ((int)rec.ReasonCode >= 0x80)
        {
            return rec.ReasonCode;
        }
        await client.SendAsync(new MqttPubRelPacket { PacketIdentifier = id });
        Assert.Equal(id, (await client.ReceiveAsync<MqttPubCompPacket>()).PacketIdentifier);
        return rec.ReasonCode;
    }

    static Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectPublisherAsync(int port, MqttProtocolVersion version) =>
        RawMqttClient.ConnectAsync(port, "pub", version, cleanStart: false, configure: c => c.SessionExpiryInterval = version == MqttProtocolVersion.V500 ? 300u : 0u);

    [Fact]
    public async Task V311_refusal_closes_without_pubrec_and_the_resend_after_reconnect_is_delivered()
    {
        var sink = new ScriptedSink();
        var refuseOnce = 1;
        sink.Answer = (m, _) => ValueTask.FromResult(Text(m) == "m1" && Interlocked.Exchange(ref refuseOnce, 0) == 1 ? AcceptResult.Failed : AcceptResult.Accepted);
        await using var server = EngineServer.Start(stages: [sink]);
        await using var sub = await SubscribeAsync(server.Port, MqttProtocolVersion.V311);

        var (pub, _) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V311);
        await using (pub)
        {
            await pub.SendAsync(Publish("q2/a", "m1", MqttQualityOfServiceLevel.ExactlyOnce, 7));
            // 3.1.1 cannot refuse: the broker closes without PUBREC, and the client keeps the message to resend
            Assert.Null(await pub.ExpectClosedAsync());
        }

        var (again, ack) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V311);
        await using var _ = again;
        Assert.True(ack.IsSessionPresent);
        Assert.Equal(MqttPubRecReasonCode.Success, await PublishQos2Async(again, "m1", 7, dup: true));
        await PublishQos2Async(again, "marker", 8);
        Assert.Equal(["m1", "marker"], await ReceiveUntilAsync(sub, "marker"));
    }

    [Fact]
    public async Task V5_error_pubrec_frees_the_packet_id_for_the_next_publish()
    {
        var sink = new ScriptedSink();
        var refuseOnce = 1;
        sink.Answer = (m, _) => ValueTask.FromResult(Text(m) == "m1" && Interlocked.Exchange(ref refuseOnce, 0) == 1 ? AcceptResult.ServerBusy : AcceptResult.Accepted);
        await using var server = EngineServer.Start(stages: [sink]);
        await using var sub = await SubscribeAsync(server.Port, MqttProtocolVersion.V500);
        var (pub, _) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V500);
        await using var _p = pub;

        Assert.Equal(MqttPubRecReasonCode.UnspecifiedError, await PublishQos2Async(pub, "m1", 7));
        // an error PUBREC ends the flow: the client may send it again, even under the same id, as a new message
        Assert.Equal(MqttPubRecReasonCode.Success, await PublishQos2Async(pub, "m1", 7));
        await PublishQos2Async(pub, "marker", 8);
        Assert.Equal(["m1", "marker"], await ReceiveUntilAsync(sub, "marker"));
    }

    [Fact]
    public async Task Rate_limit_close_loses_nothing_when_the_client_resends_what_it_holds()
    {
        const int Count = 60;
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxPublishRatePerClient = 20 });
        await using var sub = await SubscribeAsync(server.Port, MqttProtocolVersion.V311);

        // what a 3.1.1 client holds: PUBLISH until PUBREC, then PUBREL until PUBCOMP
        var unacknowledged = new SortedSet<ushort>(Enumerable.Range(1, Count).Select(i => (ushort)i));
        var released = new SortedSet<ushort>();
        var closes = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (var round = 0; (unacknowledged.Count > 0 || released.Count > 0) && round < 200 && DateTime.UtcNow < deadline; round++)
        {
            var (pub, ack) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V311);
            await using var _ = pub;
            Assert.Equal(round > 0, ack.IsSessionPresent);
            var sent = true;
            foreach (var id in released)
            {
                sent &= await TrySendAsync(pub, new MqttPubRelPacket { PacketIdentifier = id });
            }
            // the first round sends everything at once, far over the limit; later rounds resend with DUP
            foreach (var id in unacknowledged.Take(round == 0 ? Count : 10))
            {
                sent &= await TrySendAsync(pub, Publish("q2/a", $"m{id}", MqttQualityOfServiceLevel.ExactlyOnce, id, dup: round > 0));
            }
            var outstanding = released.Count + Math.Min(unacknowledged.Count, round == 0 ? Count : 10);
            if (!sent)
            {
                closes++;
            }
            while (outstanding > 0 && sent)
            {
                var packet = await pub.ReceiveAsync(TimeSpan.FromSeconds(10));
                if (packet is null or MqttDisconnectPacket)
                {
                    closes++;
                    break;
                }
                switch (packet)
                {
                    case MqttPubRecPacket rec:
                        unacknowledged.Remove(rec.PacketIdentifier);
                        released.Add(rec.PacketIdentifier);
                        await TrySendAsync(pub, new MqttPubRelPacket { PacketIdentifier = rec.PacketIdentifier });
                        break;
                    case MqttPubCompPacket comp:
                        released.Remove(comp.PacketIdentifier);
                        outstanding--;
                        break;
                }
            }
        }
        Assert.True(closes > 0, "the publisher was never closed for going over the limit: the test did not exercise the close");
        Assert.Empty(unacknowledged);
        Assert.Empty(released);

        var (last, _) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V311);
        await using var _l = last;
        await PublishQos2Async(last, "marker", 1);
        var payloads = await ReceiveUntilAsync(sub, "marker");
        Assert.Equal(Enumerable.Range(1, Count).Select(i => $"m{i}").Order(), payloads.Where(p => p != "marker").Order());
    }

    [Theory]
    [InlineData(AcceptResult.Accepted)]
    [InlineData(AcceptResult.Failed)]
    public async Task Resend_on_a_connection_that_took_over_waits_for_the_first_copy_and_is_routed_exactly_once(AcceptResult firstCopyOutcome)
    {
        var sink = new ScriptedSink();
        var firstGate = new TaskCompletionSource<AcceptResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        sink.Answer = (m, _) => Text(m) == "m1" && Interlocked.Increment(ref calls) == 1
            ? new ValueTask<AcceptResult>(firstGate.Task)
            : ValueTask.FromResult(AcceptResult.Accepted);
        await using var server = EngineServer.Start(stages: [sink]);
        await using var sub = await SubscribeAsync(server.Port, MqttProtocolVersion.V500);

        var (pub, _) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V500);
        await using var _p = pub;
        await pub.SendAsync(Publish("q2/a", "m1", MqttQualityOfServiceLevel.ExactlyOnce, 3));
        await Wait.UntilAsync(() => Volatile.Read(ref calls) == 1, TimeSpan.FromSeconds(10), "the first copy reached the accept stage");

        // the client lost its connection (as far as it knows) and takes its session over from a new one
        var (again, ack) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V500);
        await using var _a = again;
        Assert.True(ack.IsSessionPresent);
        await again.SendAsync(Publish("q2/a", "m1", MqttQualityOfServiceLevel.ExactlyOnce, 3, dup: true));
        firstGate.SetResult(firstCopyOutcome);
        var rec = await again.ReceiveAsync<MqttPubRecPacket>();
        Assert.Equal(MqttPubRecReasonCode.Success, rec.ReasonCode);
        await again.SendAsync(new MqttPubRelPacket { PacketIdentifier = 3 });
        await again.ReceiveAsync<MqttPubCompPacket>();
        await PublishQos2Async(again, "marker", 4);

        Assert.Equal(["m1", "marker"], await ReceiveUntilAsync(sub, "marker"));
        // a first copy that was refused leaves the resend to go through the accept stage itself
        Assert.Equal(firstCopyOutcome == AcceptResult.Accepted ? 1 : 2, Volatile.Read(ref calls));
    }

    [Fact]
    public async Task Store_refusal_frees_the_packet_id_for_the_next_publish()
    {
        var store = new FailingStore();
        await using var server = EngineServer.Start(store: store);
        await using var sub = await SubscribeAsync(server.Port, MqttProtocolVersion.V500);
        var (pub, _) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V500);
        await using var _p = pub;

        store.Failing = true;
        Assert.Equal(MqttPubRecReasonCode.UnspecifiedError, await PublishQos2Async(pub, "m1", 7));
        store.Failing = false;
        // the client was told the publish failed: a new message under the same id is routed, not taken for a duplicate
        Assert.Equal(MqttPubRecReasonCode.Success, await PublishQos2Async(pub, "m2", 7));
        await PublishQos2Async(pub, "marker", 8);
        Assert.Equal(["m2", "marker"], (await ReceiveUntilAsync(sub, "marker")).Where(p => p != "m1"));
    }

    [Fact]
    public async Task Shutdown_with_the_accept_stage_pending_leaves_no_packet_id_behind_in_the_store()
    {
        var directory = Directory.CreateTempSubdirectory("iotrt-q2-");
        try
        {
            var storeOptions = new StoreOptions { Directory = directory.FullName, Durability = DurabilityPolicy.Write };
            var sink = new ScriptedSink();
            var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // like a forwarder that gives up when the broker stops
            sink.Answer = (_, token) =>
            {
                entered.TrySetResult();
                return new ValueTask<AcceptResult>(Task.Delay(Timeout.Infinite, token).ContinueWith(_ => AcceptResult.Failed, TaskScheduler.Default));
            };
            var server = EngineServer.Start(stages: [sink], store: EmbeddedBrokerStore.Open(storeOptions, NullLoggerFactory.Instance));
            try
            {
                var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", configure: c => c.SessionExpiryInterval = 300);
                await sub.SendAsync(Subscribe(1, "q2/#", MqttQualityOfServiceLevel.ExactlyOnce));
                await sub.ReceiveAsync<MqttSubAckPacket>();
                await sub.DisposeAsync();
                var (pub, _) = await ConnectPublisherAsync(server.Port, MqttProtocolVersion.V500);
                await pub.SendAsync(Publish("q2/a", "m1", MqttQualityOfServiceLevel.ExactlyOnce, 5));
                await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
                await pub.DisposeAsync();
            }
            finally
            {
                await server.DisposeAsync();
            }

            await using var restarted = EngineServer.Start(store: EmbeddedBrokerStore.Open(storeOptions, NullLoggerFactory.Instance));
            var (sub2, subAck) = await RawMqttClient.ConnectAsync(restarted.Port, "sub", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
            await using var _s = sub2;
            Assert.True(subAck.IsSessionPresent);
            var (pub2, pubAck) = await ConnectPublisherAsync(restarted.Port, MqttProtocolVersion.V500);
            await using var _p = pub2;
            Assert.True(pubAck.IsSessionPresent);
            Assert.Equal(MqttPubRecReasonCode.Success, await PublishQos2Async(pub2, "m1", 5, dup: true));
            await PublishQos2Async(pub2, "marker", 6);
            Assert.Equal(["m1", "marker"], await ReceiveUntilAsync(sub2, "marker"));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>False when the broker has already closed the connection (as a client finds out when it writes).</summary>
    static async Task<bool> TrySendAsync(RawMqttClient client, MqttPacket packet)
    {
        try
        {
            await client.SendAsync(packet);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The in-memory store, except that while <see cref="Failing"/> nothing becomes durable and waits fail, as when the disk refuses writes.</summary>
    sealed class FailingStore : ForwardingBrokerStore
    {
        public volatile bool Failing;

        public override long Position => Failing ? Inner.Position + 1 : Inner.Position;
        public override bool IsDurable(long position) => !Failing && Inner.IsDurable(position);
        public override ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken = default) =>
            Failing ? ValueTask.FromException(new IOException("The disk refuses writes.")) : Inner.WaitDurableAsync(position, cancellationToken);
        public override bool Healthy => !Failing;
    }
}
