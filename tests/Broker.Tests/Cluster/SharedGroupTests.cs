using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// A <c>$share</c> group spans nodes: each message goes to exactly one member cluster-wide, a local member when the
/// accepting node has one, else one node among those with members (round robin), which gives it to one of its own.
/// </summary>
public sealed class SharedGroupTests(ThreeNodeCluster cluster) : IClassFixture<ThreeNodeCluster>
{
    const int PerPublisher = 200;
    readonly ClusterNodes _nodes = cluster.Nodes;

    static IEnumerable<string> Shared(MqttTestClient member, string prefix) =>
        member.Received.Where(m => m.Payload.StartsWith(prefix, StringComparison.Ordinal)).Select(m => m.Payload);

    [Fact]
    public async Task With_members_on_every_node_each_message_goes_once_in_total_to_the_accepting_nodes_member()
    {
        var members = new Dictionary<string, MqttTestClient>();
        var publishers = new List<MqttTestClient>();
        try
        {
            foreach (var id in _nodes.Ids)
            {
                var member = await MqttTestClient.ConnectAsync(_nodes[id]);
                members[id] = member;
                await member.SubscribeAsync("$share/all/shg/all", MqttQualityOfServiceLevel.AtLeastOnce);
                await member.SubscribeAsync("shg/all-end", MqttQualityOfServiceLevel.AtLeastOnce);
            }
            foreach (var id in _nodes.Ids)
            {
                await _nodes.WaitForRouteEverywhereAsync(id, "shg/all", "all");
                await _nodes.WaitForRouteEverywhereAsync(id, "shg/all-end");
            }

            foreach (var id in _nodes.Ids)
            {
                publishers.Add(await MqttTestClient.ConnectAsync(_nodes[id]));
            }
            await Task.WhenAll(publishers.Select(async (p, n) =>
            {
                var from = _nodes.Ids.ElementAt(n);
                for (var i = 0; i < PerPublisher; i++) await p.PublishAsync("shg/all", $"{from}-{i}", MqttQualityOfServiceLevel.AtLeastOnce);
                await p.PublishAsync("shg/all-end", from, MqttQualityOfServiceLevel.AtLeastOnce);
            }));
            // every member has every publisher's end marker: each publisher's shared messages came before it
            foreach (var member in members.Values)
            {
                await Wait.UntilAsync(() => member.Received.Count(m => m.Topic == "shg/all-end") == 3, Timeouts.Default, "the three end markers");
            }

            var all = members.Values.SelectMany(m => m.Received.Where(r => r.Topic == "shg/all").Select(r => r.Payload)).ToList();
            Assert.Equal(3 * PerPublisher, all.Count);
            Assert.Equal(3 * PerPublisher, all.Distinct().Count());
            foreach (var (id, member) in members)
            {
                // a local member is preferred: each node's member got exactly the messages accepted on its node
                Assert.Equal(Enumerable.Range(0, PerPublisher).Select(i => $"{id}-{i}").Order(), Shared(member, id + "-").Order());
                Assert.Equal(PerPublisher, member.Received.Count(r => r.Topic == "shg/all"));
            }
        }
        finally
        {
            foreach (var c in members.Values.Concat(publishers)) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Without_a_local_member_each_message_goes_once_to_one_member_on_one_node_round_robin()
    {
        await using var b1 = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await using var b2 = await MqttTestClient.ConnectAsync(_nodes["b"]);
        await using var c1 = await MqttTestClient.ConnectAsync(_nodes["c"]);
        foreach (var member in new[] { b1, b2, c1 })
        {
            await member.SubscribeAsync("$share/rr/shg/rr", MqttQualityOfServiceLevel.AtLeastOnce);
            await member.SubscribeAsync("shg/rr-end", MqttQualityOfServiceLevel.AtLeastOnce);
        }
        await _nodes.WaitForRouteAsync("a", "b", "shg/rr", "rr");
        await _nodes.WaitForRouteAsync("a", "c", "shg/rr", "rr");
        await _nodes.WaitForRouteAsync("a", "b", "shg/rr-end");
        await _nodes.WaitForRouteAsync("a", "c", "shg/rr-end");

        await using var publisher = await MqttTestClient.ConnectAsync(_nodes["a"]);
        for (var i = 0; i < PerPublisher; i++) await publisher.PublishAsync("shg/rr", "m-" + i, MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("shg/rr-end", "end", MqttQualityOfServiceLevel.AtLeastOnce);
        foreach (var member in new[] { b1, b2, c1 }) await member.WaitForMessageAsync("shg/rr-end", Timeouts.Default);

        var onB = Shared(b1, "m-").Concat(Shared(b2, "m-")).ToList();
        var onC = Shared(c1, "m-").ToList();
        Assert.Equal(Enumerable.Range(0, PerPublisher).Select(i => "m-" + i).Order(), onB.Concat(onC).Order());
        // one node per message, alternating between the two nodes with members
        Assert.Equal(PerPublisher / 2, onB.Count);
        Assert.Equal(PerPublisher / 2, onC.Count);
    }
}
