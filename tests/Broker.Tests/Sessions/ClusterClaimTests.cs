using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Engine.Sessions;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Sessions;

/// <summary>
/// CONNECT through <see cref="IClusterSessions"/>: the claim runs before the session is attached, so a client that
/// moves to another node finds its session there (session present = 1) and the old node's connection is taken over;
/// a claim that cannot be made refuses the CONNECT with 0x88.
/// </summary>
public sealed class ClusterClaimTests
{
    const MqttQualityOfServiceLevel Qos1 = MqttQualityOfServiceLevel.AtLeastOnce;

    /// <summary>
    /// Session ownership for nodes in one process, as the cluster keeps it between processes: a client id belongs to the
    /// node its last CONNECT claimed on, and a claim on another node moves the session there through its bytes. A claim
    /// whose owner is stopped fails, as one whose owner does not answer.
    /// </summary>
    sealed class InProcessOwnership
    {
        readonly Lock _lock = new();
        readonly Dictionary<string, HandoverNode> _owners = new(StringComparer.Ordinal);

        readonly List<string> _released = new();

        /// <summary>The client ids whose ownership was released, in order.</summary>
        public string[] Released
        {
            get
            {
                lock (_lock)
                {
                    return _released.ToArray();
                }
            }
        }

        public void Join(HandoverNode node) => node.Broker.ClusterSessions = new Member(this, node, node.Broker);

        /// <summary>Claims through <paramref name="node"/> (which may be stopped by then); told of ends by <paramref name="broker"/>, its engine.</summary>
        sealed class Member(InProcessOwnership ownership, HandoverNode node, MqttBroker broker) : IClusterSessions
        {
            public ValueTask ClaimAsync(string clientId, bool cleanStart, CancellationToken cancellationToken)
            {
                lock (ownership._lock)
                {
                    if (ownership._owners.TryGetValue(clientId, out var owner) && owner != node)
                    {
                        // a stopped node has no broker to ask: the claim fails
                        if (owner.Broker.HandOver(clientId, cleanStart) is { } snapshot)
                        {
                            node.Broker.Adopt(SessionSnapshot.Read(snapshot.ToBytes()));
                        }
                    }
                    ownership._owners[clientId] = node;
                }
                return ValueTask.CompletedTask;
            }

            public void SessionEnded(string clientId)
            {
                lock (ownership._lock)
                {
                    if (ownership._owners.TryGetValue(clientId, out var owner) && owner == node && !broker.HasSession(clientId))
                    {
                        ownership._owners.Remove(clientId);
                        ownership._released.Add(clientId);
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_connect_on_another_node_takes_the_live_session_over_with_its_subscriptions(MqttProtocolVersion version)
    {
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        var ownership = new InProcessOwnership();
        ownership.Join(node1);
        ownership.Join(node2);
        var expiry = version == MqttProtocolVersion.V500 ? 300u : 0;

        var (first, ack1) = await RawMqttClient.ConnectAsync(node1.Port, "dev", version, cleanStart: false, configure: c => c.SessionExpiryInterval = expiry);
        await using var _f = first;
        Assert.False(ack1.IsSessionPresent);
        await first.SubscribeGrantedAsync(1, "t/a", Qos1);

        var (second, ack2) = await RawMqttClient.ConnectAsync(node2.Port, "dev", version, cleanStart: false, configure: c => c.SessionExpiryInterval = expiry);
        await using var _s = second;
        Assert.True(ack2.IsSessionPresent);
        var closed = await first.ExpectClosedAsync();
        Assert.Equal(version == MqttProtocolVersion.V500 ? MqttDisconnectReasonCode.SessionTakenOver : (MqttDisconnectReasonCode?)null, closed?.ReasonCode);
        Assert.False(node1.Broker.HasSession("dev"));

        var (pub, _) = await RawMqttClient.ConnectAsync(node2.Port, "pub");
        await using var _p = pub;
        await pub.PublishAsync("t/a", "after the move", Qos1);
        Assert.Equal("after the move", (await second.ReceivePublishAsync()).Text());
        await second.ExpectNothingBeforeMarkerAsync();
    }

    [Fact]
    public async Task Sessions_that_end_release_their_ownership_and_a_handover_does_not()
    {
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        var ownership = new InProcessOwnership();
        ownership.Join(node1);
        ownership.Join(node2);

        var (first, _) = await RawMqttClient.ConnectAsync(node1.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        var (second, ack) = await RawMqttClient.ConnectAsync(node2.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        Assert.True(ack.IsSessionPresent);
        await first.ExpectClosedAsync();
        await first.DisposeAsync();
        // a clean session ends with its connection: the node that held it tells the cluster, once
        var (clean, _) = await RawMqttClient.ConnectAsync(node1.Port, "clean");
        await clean.DisconnectAsync();
        await Wait.UntilAsync(() => ownership.Released.Length > 0, Timeouts.Default, "the clean session's release");
        // the moved session ends where it now is
        Assert.True(node2.Broker.DeleteSession("dev"));
        await second.ExpectClosedAsync();
        await second.DisposeAsync();
        await Wait.UntilAsync(() => ownership.Released.Length > 1, Timeouts.Default, "the moved session's release");
        Assert.Equal(new[] { "clean", "dev" }, ownership.Released);
    }

    [Fact]
    public async Task A_claim_that_cannot_be_made_refuses_the_connect_with_server_unavailable()
    {
        await using var node1 = HandoverNode.Start();
        await using var node2 = HandoverNode.Start();
        var ownership = new InProcessOwnership();
        ownership.Join(node1);
        ownership.Join(node2);
        var (first, _) = await RawMqttClient.ConnectAsync(node1.Port, "dev", cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        await first.DisposeAsync();
        await node1.StopAsync();

        foreach (var version in new[] { MqttProtocolVersion.V500, MqttProtocolVersion.V311 })
        {
            var (refused, ack) = await RawMqttClient.ConnectAsync(node2.Port, "dev", version, cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
            await using var _r = refused;
            if (version == MqttProtocolVersion.V500)
            {
                Assert.Equal(MqttConnectReasonCode.ServerUnavailable, ack.ReasonCode);
            }
            else
            {
                Assert.Equal(MqttConnectReturnCode.ConnectionRefusedServerUnavailable, ack.ReturnCode);
            }
            Assert.Null(await refused.ReceiveAsync()); // closed
        }
        Assert.False(node2.Broker.HasSession("dev"));
    }
}
