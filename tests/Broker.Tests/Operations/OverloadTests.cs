using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Operations;

public sealed class OverloadTests
{
    [Fact]
    public async Task Connections_over_the_limit_get_server_busy()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxConnections = 2 });
        var (a, _) = await RawMqttClient.ConnectAsync(server.Port, "limit-a");
        var (b, _) = await RawMqttClient.ConnectAsync(server.Port, "limit-b");
        await using var _a = a;

        var (c, refused) = await RawMqttClient.ConnectAsync(server.Port, "limit-c");
        await using (c) Assert.Null(await c.ExpectClosedAsync(Timeouts.Default));
        var (d, refused311) = await RawMqttClient.ConnectAsync(server.Port, "limit-d", MqttProtocolVersion.V311);
        await using (d) { }
        await b.SendAsync(new MqttDisconnectPacket());
        await b.ExpectClosedAsync();
        await b.DisposeAsync();
        await Wait.UntilAsync(() => server.Broker.AdmittedConnections == 1, Timeouts.Default, "the slot to be given back");
        var (e, accepted) = await RawMqttClient.ConnectAsync(server.Port, "limit-e");
        await using var _e = e;

        Assert.Equal(MqttConnectReasonCode.ServerBusy, refused.ReasonCode);
        Assert.Equal(MqttConnectReturnCode.ConnectionRefusedServerUnavailable, refused311.ReturnCode);
        Assert.Equal(MqttConnectReasonCode.Success, accepted.ReasonCode);
        Assert.Equal(2, server.Broker.Metrics.ConnectsRefused(ConnectRefusal.MaxConnections));
    }

    [Fact]
    public async Task Connects_over_the_rate_get_server_busy()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxConnectRate = 1 });
        var (a, first) = await RawMqttClient.ConnectAsync(server.Port, "rate-a");
        await using var _a = a;

        // the bucket holds one connect and refills one a second: a burst of three cannot all pass
        var results = new List<MqttConnectReasonCode>();
        for (var i = 0; i < 3; i++)
        {
            var (client, connAck) = await RawMqttClient.ConnectAsync(server.Port, $"rate-{i}");
            results.Add(connAck.ReasonCode);
            await client.DisposeAsync();
        }

        Assert.Equal(MqttConnectReasonCode.Success, first.ReasonCode);
        Assert.Contains(MqttConnectReasonCode.ServerBusy, results);
        Assert.True(server.Broker.Metrics.ConnectsRefused(ConnectRefusal.ConnectRate) >= 1);
    }

    [Fact]
    public async Task Publishes_over_the_rate_get_quota_exceeded()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxPublishRatePerClient = 10 });
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "pub-rate");
        await using var _c = client;

        // a bucket of ten: a burst of eighteen has some refused (unless sending it took 0.8 s), too few to count as flooding
        for (ushort id = 1; id <= 18; id++) await client.SendAsync(Packets.Publish("rate/t", "x", MqttQualityOfServiceLevel.AtLeastOnce, id));
        var acks = new List<MqttPubAckPacket>();
        for (var i = 0; i < 18; i++) acks.Add(await client.ReceiveAsync<MqttPubAckPacket>(Timeouts.Default));

        Assert.Equal(Enumerable.Range(1, 18).Select(i => (ushort)i), acks.Select(a => a.PacketIdentifier));
        Assert.Equal(MqttPubAckReasonCode.Success, acks[0].ReasonCode);
        Assert.Contains(acks, a => a.ReasonCode == MqttPubAckReasonCode.QuotaExceeded);
        Assert.Equal(acks.Count(a => a.ReasonCode == MqttPubAckReasonCode.QuotaExceeded), server.Broker.Metrics.PublishesRefused(PublishRefusal.MessageRate));
    }

    [Fact]
    public async Task A_client_flooding_past_twice_its_rate_is_disconnected_with_quota_exceeded()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxPublishRatePerClient = 5 });
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "pub-flood");
        await using var _c = client;

        for (var i = 0; i < 40; i++) await client.SendAsync(Packets.Publish("rate/t", "x", MqttQualityOfServiceLevel.AtMostOnce));
        var disconnect = await client.ExpectClosedAsync(Timeouts.Default);

        Assert.Equal(MqttDisconnectReasonCode.QuotaExceeded, disconnect?.ReasonCode);
        Assert.Equal(1, server.Broker.Metrics.PublishLimitDisconnects);
    }

    [Fact]
    public async Task Publish_bytes_over_the_limit_get_quota_exceeded()
    {
        await using var server = EngineServer.Start(new BrokerOptions { SysInterval = 0, MaxPublishBytesPerClient = 1000 });
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "pub-bytes");
        await using var _c = client;
        var payload = new string('x', 100);

        // 1800 bytes against a bucket of 1000: some refused, too few to count as flooding
        for (ushort id = 1; id <= 18; id++) await client.SendAsync(Packets.Publish("rate/t", payload, MqttQualityOfServiceLevel.AtLeastOnce, id));
        var acks = new List<MqttPubAckPacket>();
        for (var i = 0; i < 18; i++) acks.Add(await client.ReceiveAsync<MqttPubAckPacket>(Timeouts.Default));

        Assert.Equal(MqttPubAckReasonCode.Success, acks[0].ReasonCode);
        Assert.Contains(acks, a => a.ReasonCode == MqttPubAckReasonCode.QuotaExceeded);
        Assert.True(server.Broker.Metrics.PublishesRefused(PublishRefusal.ByteRate) >= 1);
    }

    [Fact]
    public void Negative_limits_are_rejected()
    {
        var errors = new BrokerOptions { MaxConnections = -1, MaxConnectRate = -1, MaxPublishRatePerClient = -1, MaxPublishBytesPerClient = -1 }.Validate().ToList();

        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("Broker:MaxPublishBytesPerClient", StringComparison.Ordinal));
    }
}
