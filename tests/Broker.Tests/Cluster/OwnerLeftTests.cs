using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>An owner that has left the membership is given up on: a CONNECT for its client id elsewhere gets a new session.</summary>
public sealed class OwnerLeftTests
{
    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_connect_for_an_id_whose_owner_stopped_gets_a_fresh_session(MqttProtocolVersion version)
    {
        await using var nodes = await ClusterNodes.StartAsync(["p", "q", "r"]);
        var id = $"orphan-{version}";
        var (dev, ack1) = await RawMqttClient.ConnectAsync(nodes["q"].MqttPort, id, version, cleanStart: false,
            c => c.SessionExpiryInterval = version == MqttProtocolVersion.V500 ? 300u : 0u);
        await using var _d = dev;
        Assert.False(ack1.IsSessionPresent);
        await dev.SubscribeGrantedAsync(1, "orphan/t", MqttQualityOfServiceLevel.AtLeastOnce);

        await nodes.StopAsync("q");
        await Wait.UntilAsync(() => nodes.Node("r").Peers.All(p => p.Node != "q") && nodes.Node("p").Peers.All(p => p.Node != "q"),
            TimeSpan.FromSeconds(60), "q gone from the membership");

        var (fresh, ack2) = await RawMqttClient.ConnectAsync(nodes["r"].MqttPort, id, version, cleanStart: false,
            c => c.SessionExpiryInterval = version == MqttProtocolVersion.V500 ? 300u : 0u);
        await using var _f = fresh;
        Assert.Equal(MqttConnectReasonCode.Success, ack2.ReasonCode);
        Assert.False(ack2.IsSessionPresent);
        Assert.True(nodes["r"].Host.Services.GetRequiredService<MqttBroker>().HasSession(id));
    }
}
