using System.Collections.Concurrent;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>The inbound pipeline: authorize → accept → route → acknowledge, with an accept stage that may answer late.</summary>
public sealed class PublishPipelineTests
{
    /// <summary>
    /// An accept stage whose answers the test releases by hand, like a log that acknowledges later; markers pass at once.
    /// With <paramref name="inline"/>, what the engine does on an answer runs inside SetResult, so it is done when that returns.
    /// </summary>
    sealed class GatedSink(bool inline = false) : IPublishStage
    {
        public ConcurrentQueue<(MqttMessage Message, TaskCompletionSource<AcceptResult> Gate)> Waiting { get; } = new();

        public ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken)
        {
            if (message.Topic.StartsWith(ConformanceSteps.MarkerPrefix, StringComparison.Ordinal)) return ValueTask.FromResult(AcceptResult.Accepted);
            var gate = new TaskCompletionSource<AcceptResult>(inline ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);
            Waiting.Enqueue((message, gate));
            return new ValueTask<AcceptResult>(gate.Task);
        }
    }

    [Fact]
    public async Task Acknowledgement_waits_for_the_accept_stage_without_stalling_reads_and_leaves_in_order()
    {
        var sink = new GatedSink(inline: true);
        await using var server = EngineServer.Start(stages: [sink]);
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SendAsync(Subscribe(1, "p/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        for (ushort i = 1; i <= 3; i++)
        {
            await pub.SendAsync(Publish("p/t", i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce, i));
        }
        // all three reached the accept stage although none is acknowledged: reading did not stall
        await Wait.UntilAsync(() => sink.Waiting.Count == 3, TimeSpan.FromSeconds(5), "three publishes in the accept stage");
        await pub.SendAsync(new MqttPingReqPacket());
        await pub.ReceiveAsync<MqttPingRespPacket>(); // control traffic is not stuck behind pending data
        await sub.ExpectNothingBeforeMarkerAsync(); // nothing routed before acceptance

        var gates = sink.Waiting.ToArray();
        // the last one answers first, but its PUBACK must wait for the earlier ones: whatever the engine does on that
        // answer is done when SetResult returns (inline), before the others answer, so the order read below proves it
        gates[2].Gate.SetResult(AcceptResult.Accepted);
        gates[0].Gate.SetResult(AcceptResult.Accepted);
        gates[1].Gate.SetResult(AcceptResult.Accepted);
        for (ushort i = 1; i <= 3; i++)
        {
            Assert.Equal(i, (await pub.ReceiveAsync<MqttPubAckPacket>()).PacketIdentifier);
        }
        for (var i = 1; i <= 3; i++)
        {
            Assert.Equal(i.ToString(), (await sub.ReceiveAsync<MqttPublishPacket>()).Text());
        }
    }

    [Fact]
    public async Task Refusal_from_the_accept_stage_reaches_the_client_as_a_reason_code_and_nothing_is_routed()
    {
        var sink = new GatedSink();
        await using var server = EngineServer.Start(stages: [sink]);
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub");
        await sub.SendAsync(Subscribe(1, "p/#", MqttQualityOfServiceLevel.AtLeastOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        await pub.SendAsync(Publish("p/t", "refused", MqttQualityOfServiceLevel.AtLeastOnce, 1));
        await pub.SendAsync(Publish("p/t", "refused2", MqttQualityOfServiceLevel.ExactlyOnce, 2));
        await Wait.UntilAsync(() => sink.Waiting.Count == 2, TimeSpan.FromSeconds(5), "publishes in the accept stage");
        foreach (var (_, gate) in sink.Waiting)
        {
            gate.SetResult(AcceptResult.ServerBusy);
        }
        // 0x89 (server busy) is not allowed in PUBACK/PUBREC: the refusal reaches the client as 0x80 unspecified error
        Assert.Equal(MqttPubAckReasonCode.UnspecifiedError, (await pub.ReceiveAsync<MqttPubAckPacket>()).ReasonCode);
        Assert.Equal(MqttPubRecReasonCode.UnspecifiedError, (await pub.ReceiveAsync<MqttPubRecPacket>()).ReasonCode);
        await sub.ExpectNothingBeforeMarkerAsync(pub);
    }

    /// <summary>Refuses the messages whose payload is <paramref name="refused"/> and records what it was asked.</summary>
    sealed class RefusingStage(string refused) : IPublishStage
    {
        public ConcurrentQueue<string> Seen { get; } = new();

        public ValueTask<AcceptResult> AcceptAsync(MqttMessage message, CancellationToken cancellationToken)
        {
            var text = System.Text.Encoding.UTF8.GetString(message.Payload.Span);
            Seen.Enqueue(text);
            return ValueTask.FromResult(text == refused ? AcceptResult.QuotaExceeded : AcceptResult.Accepted);
        }
    }

    sealed class RecordingObserver : IPublishObserver
    {
        public ConcurrentQueue<string> Seen { get; } = new();

        public void OnAccepted(MqttMessage message) => Seen.Enqueue(System.Text.Encoding.UTF8.GetString(message.Payload.Span));
    }

    [Fact]
    public async Task Stages_run_in_the_order_given_a_refusal_ends_the_pipeline_and_observers_see_only_what_all_accepted()
    {
        var first = new RefusingStage("refused-by-first");
        var second = new RefusingStage("refused-by-second");
        var observer = new RecordingObserver();
        await using var server = EngineServer.Start(stages: [first, second], observers: [observer]);
        var (pub, _) = await RawMqttClient.ConnectAsync(server.Port, "pub");
        string[] payloads = ["one", "refused-by-first", "refused-by-second", "two"];
        for (var i = 0; i < payloads.Length; i++)
        {
            await pub.SendAsync(Publish("p/t", payloads[i], MqttQualityOfServiceLevel.AtLeastOnce, (ushort)(i + 1)));
        }
        MqttPubAckReasonCode[] expected = [MqttPubAckReasonCode.Success, MqttPubAckReasonCode.QuotaExceeded, MqttPubAckReasonCode.QuotaExceeded, MqttPubAckReasonCode.Success];
        foreach (var code in expected)
        {
            Assert.Equal(code, (await pub.ReceiveAsync<MqttPubAckPacket>()).ReasonCode);
        }

        Assert.Equal(payloads, first.Seen);
        Assert.Equal(["one", "refused-by-second", "two"], second.Seen);
        Assert.Equal(["one", "two"], observer.Seen);
    }
}
