using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>The remote route index's matching rules and its tie to a peer's silo incarnation; the crossing codec's round trip.</summary>
public sealed class RemoteRoutesTests
{
    static ClusterRoute R(string filter, string? group = null) => new(filter, group);

    static (string[] Nodes, (string Node, ClusterRoute Route)[] Shared) Match(RemoteRoutes routes, string topic, Func<ClusterRoute, bool>? skip = null)
    {
        var nodes = new HashSet<string>();
        var shared = new List<(string, ClusterRoute)>();
        routes.Match(topic, nodes, shared, skip ?? (_ => false));
        return ([.. nodes.Order()], [.. shared]);
    }

    [Fact]
    public void Wildcards_match_as_MQTT_filters_do_and_a_node_is_listed_once()
    {
        var routes = new RemoteRoutes();
        routes.Apply("b", "sb", reset: true, [R("a/#"), R("a/+/c"), R("a/b/c")], []);
        routes.Apply("c", "sc", reset: true, [R("+/+"), R("#"), R("/x")], []);
        routes.Apply("d", "sd", reset: true, [R("a/b")], []);

        Assert.Equal(["b", "c", "d"], Match(routes, "a/b").Nodes);
        Assert.Equal(["b", "c"], Match(routes, "a/b/c").Nodes);
        Assert.Equal(["b", "c"], Match(routes, "a").Nodes); // "a/#" matches "a"; "#" everything
        Assert.Equal(["c"], Match(routes, "x/y").Nodes);
        Assert.Equal(["c"], Match(routes, "/x").Nodes);
        // "+" and "#" at the first level do not match '$' topics
        Assert.Empty(Match(routes, "$SYS/broker/uptime").Nodes);
        routes.Apply("d", "sd", reset: false, [R("$SYS/#")], []);
        Assert.Equal(["d"], Match(routes, "$SYS/broker/uptime").Nodes);
    }

    [Fact]
    public void Shared_routes_pick_one_node_per_group_and_skip_groups_with_a_local_member()
    {
        var routes = new RemoteRoutes();
        routes.Apply("b", "sb", reset: true, [R("s/+", "g"), R("s/+", "h")], []);
        routes.Apply("c", "sc", reset: true, [R("s/+", "g")], []);

        var picks = Enumerable.Range(0, 4).Select(_ => Match(routes, "s/1").Shared.Where(s => s.Route.ShareGroup == "g").Single().Node).ToList();
        Assert.Equal(2, picks.Count(p => p == "b"));
        Assert.Equal(2, picks.Count(p => p == "c"));
        var skipped = Match(routes, "s/1", r => r.ShareGroup == "g");
        Assert.Equal([("b", R("s/+", "h"))], skipped.Shared);
        Assert.Empty(skipped.Nodes);
    }

    [Fact]
    public void A_full_set_replaces_a_peer_s_routes_and_only_its_own_incarnation_removes_or_changes_them()
    {
        var routes = new RemoteRoutes();
        routes.Apply("b", "old", reset: true, [R("t/1"), R("t/2")], []);
        routes.Apply("b", "new", reset: true, [R("t/3")], []); // b restarted: its new full set
        Assert.Equal(1, routes.CountOf("b"));
        Assert.Equal(["b"], Match(routes, "t/3").Nodes);
        Assert.Empty(Match(routes, "t/1").Nodes);

        routes.Apply("b", "old", reset: false, [R("t/9")], [R("t/3")]); // late deltas of the old incarnation
        Assert.False(routes.RemoveNode("b", "old")); // the old one's death leaves the new one's routes
        Assert.True(routes.Has("b", R("t/3")));
        Assert.False(routes.Has("b", R("t/9")));

        routes.Apply("b", "new", reset: false, [R("t/4")], [R("t/3")]);
        Assert.Equal(["b"], Match(routes, "t/4").Nodes);
        Assert.Empty(Match(routes, "t/3").Nodes);
        Assert.True(routes.RemoveNode("b", "new"));
        Assert.Equal(0, routes.Count);
        Assert.Empty(Match(routes, "t/4").Nodes);
    }

    [Fact]
    public void The_crossing_codec_keeps_every_field()
    {
        var full = new PeerMessage("a/b", [1, 2, 3], 2, true, "pub", "user", 1_500,
            new PeerMessageProperties("text/plain", "reply/x", [9, 8], 1, ["k", "k"], [[65], []]), [new PeerRoute("a/+", "g")]);
        var bare = new PeerMessage("ü/x", [], 0, false, null, null, -1, null, null);
        var now = DateTimeOffset.UnixEpoch.AddDays(1);
        var decoded = new List<(MqttMessage Message, ClusterRoute[]? Groups)>();
        PeerMessageCodec.Decode(PeerMessageCodec.Encode([full, bare]), 2, now, (m, g) => decoded.Add((m, g)));

        Assert.Equal(2, decoded.Count);
        var (m1, g1) = decoded[0];
        Assert.Equal("a/b", m1.Topic);
        Assert.Equal([1, 2, 3], m1.Payload.ToArray());
        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, m1.QoS);
        Assert.True(m1.Retain);
        Assert.Equal("pub", m1.PublisherClientId);
        Assert.Equal("user", m1.PublisherUsername);
        Assert.Equal(now.AddMilliseconds(1_500), m1.ExpiresAt);
        Assert.Equal("text/plain", m1.ContentType);
        Assert.Equal("reply/x", m1.ResponseTopic);
        Assert.Equal([9, 8], m1.CorrelationData);
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, m1.PayloadFormat);
        Assert.Equal([("k", "A"), ("k", "")], m1.UserProperties!.Select(p => (p.Name, System.Text.Encoding.UTF8.GetString(p.ValueBuffer.Span))));
        Assert.Equal([R("a/+", "g")], g1!);
        var (m2, g2) = decoded[1];
        Assert.Equal("ü/x", m2.Topic);
        Assert.True(m2.Payload.IsEmpty);
        Assert.Equal(MqttQualityOfServiceLevel.AtMostOnce, m2.QoS);
        Assert.Null(m2.PublisherClientId);
        Assert.Null(m2.ExpiresAt);
        Assert.Null(m2.ContentType);
        Assert.Null(m2.UserProperties);
        Assert.Null(g2);
    }
}
