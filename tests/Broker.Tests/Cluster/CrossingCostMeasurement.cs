using System.Diagnostics;
using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet.Protocol;
using Orleans.Serialization;
using Xunit.Abstractions;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// Figures for docs/cluster.md, printed, never asserted: how many messages per second cross from node a to node b
/// through the batched grain calls, and the CPU per message of both ends, for a few batch sizes. Bounded: a fixed
/// number of messages per size. Node b routes each one to a persistent subscriber that is offline, so QoS 0 copies
/// are matched and dropped there: what is measured is the crossing, not a client.
/// </summary>
public sealed class CrossingCostMeasurement(ITestOutputHelper output)
{
    const int Messages = 100_000;

    [Theory]
    [InlineData(64)]
    [InlineData(256)]
    [InlineData(1024)]
    public async Task Crossing_rate_and_CPU_per_message(int batch)
    {
        await using var nodes = await ClusterNodes.StartAsync(["a", "b"], new()
        {
            ["Cluster:PeerBatchMessages"] = batch.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Cluster:PeerQueueMessages"] = (Messages * 2).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "Warning",
        });
        await using (var subscriber = await MqttTestClient.ConnectAsync(nodes["b"], clientId: "cost-sub", configure: o => o.WithCleanSession(false).WithSessionExpiryInterval(600)))
        {
            await subscriber.SubscribeAsync("cost/#", MqttQualityOfServiceLevel.AtMostOnce);
        }
        await nodes.WaitForRouteAsync("a", "b", "cost/#");
        var a = nodes.Node("a");
        var payload = new byte[100];
        var message = new MqttMessage { Topic = "cost/dev/1", Payload = payload, QoS = MqttQualityOfServiceLevel.AtMostOnce, PublisherClientId = "cost-pub" };
        // warm-up: JIT and connections (at least: a batch retried after a failed call while membership settles counts twice)
        for (var i = 0; i < 2_000; i++) a.Offer(message);
        await Wait.UntilAsync(() => nodes.Link("a", "b").Crossed >= 2_000, Timeouts.Default, "the warm-up crossed");

        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Messages; i++) a.Offer(message);
        var offered = clock.Elapsed;
        await Wait.UntilAsync(() => nodes.Link("a", "b").Crossed >= 2_000 + Messages, TimeSpan.FromSeconds(120), $"{Messages} messages crossed");
        var elapsed = clock.Elapsed;
        var cpuUsed = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        var link = nodes.Link("a", "b");
        output.WriteLine($"batch {batch}: {Messages} messages of 100 B crossed in {elapsed.TotalMilliseconds:F0} ms = {Messages / elapsed.TotalSeconds:F0} msg/s; " +
            $"offer loop {offered.TotalMilliseconds:F0} ms; CPU {cpuUsed.TotalMilliseconds:F0} ms = {cpuUsed.TotalMicroseconds / Messages:F2} µs/msg (both nodes); " +
            $"{link.Batches} batches, mean round trip {link.RoundTripSeconds / link.Batches * 1e6:F0} µs; dropped {link.Dropped}");
    }

    [Fact]
    public async Task Encoding_cost_per_message_of_a_batch_Orleans_codec_and_compact_binary()
    {
        await using var nodes = await ClusterNodes.StartAsync(["a"], new() { ["Logging:LogLevel:Default"] = "Warning" });
        var serializer = nodes["a"].Host.Services.GetRequiredService<Serializer<PeerMessage[]>>();
        // distinct messages: the Orleans serializer would write a repeated object once
        var messages = Enumerable.Range(0, 256).Select(i => new PeerMessage("cost/dev/" + i, new byte[100], 0, false, "cost-pub-" + i, null, -1, null, null)).ToArray();
        const int rounds = 1_000;
        var orleansBytes = serializer.SerializeToArray(messages).Length;
        var compactBytes = PeerMessageCodec.Encode(messages).Length;
        var decoded = 0;
        void Count(MqttMessage m, IotRealtime.Broker.Engine.Cluster.ClusterRoute[]? g) => decoded++;
        for (var i = 0; i < 100; i++)
        {
            serializer.Deserialize(serializer.SerializeToArray(messages));
            PeerMessageCodec.Decode(PeerMessageCodec.Encode(messages), messages.Length, DateTimeOffset.UtcNow, Count);
        }
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < rounds; i++) serializer.Deserialize(serializer.SerializeToArray(messages));
        var orleans = clock.Elapsed;
        clock.Restart();
        for (var i = 0; i < rounds; i++) PeerMessageCodec.Decode(PeerMessageCodec.Encode(messages), messages.Length, DateTimeOffset.UtcNow, Count);
        var compact = clock.Elapsed;
        output.WriteLine($"256 messages of 100 B, encode + decode per message: Orleans generated codec {orleans.TotalMicroseconds / (rounds * 256.0):F3} µs, " +
            $"{orleansBytes / 256.0:F1} B; compact binary (to MqttMessage) {compact.TotalMicroseconds / (rounds * 256.0):F3} µs, {compactBytes / 256.0:F1} B");
        Assert.Equal(256 * (rounds + 100), decoded);
    }

    [Fact]
    public async Task Full_route_sync_of_100000_filters_to_a_joining_node()
    {
        const int filters = 100_000;
        await using var nodes = await ClusterNodes.StartAsync(["a"], new() { ["Logging:LogLevel:Default"] = "Warning" });
        await using var subscriber = await MqttTestClient.ConnectAsync(nodes["a"], clientId: "many-filters");
        for (var start = 0; start < filters; start += 1_000)
        {
            var options = new MQTTnet.MqttClientSubscribeOptionsBuilder();
            for (var i = start; i < start + 1_000; i++) options.WithTopicFilter($"fleet/{i % 100}/dev{i}/+", MqttQualityOfServiceLevel.AtMostOnce);
            await subscriber.Client.SubscribeAsync(options.Build());
        }
        Assert.Equal(filters, nodes["a"].Host.Broker.SubscriptionCount);

        var clock = Stopwatch.StartNew();
        await nodes.AddAsync("b");
        var started = clock.Elapsed;
        await Wait.UntilAsync(() => nodes.Node("b").Remote.CountOf("a") == filters, TimeSpan.FromSeconds(120), $"{filters} routes of a on b");
        output.WriteLine($"{filters} filters: node b started in {started.TotalSeconds:F1} s and held all of a's routes {clock.Elapsed.TotalSeconds:F1} s after its start began " +
            $"({(clock.Elapsed - started).TotalSeconds:F1} s after it was up)");
    }
}
