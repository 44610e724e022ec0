using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>MQTT §3.1/§3.2: CONNECT and CONNACK.</summary>
public sealed class ConnectTests
{
    [Fact]
    public async Task Connack_announces_the_brokers_limits_in_mqtt5()
    {
        await using var server = EngineServer.Start();
        var (_, ack) = await RawMqttClient.ConnectAsync(server.Port, "c");
        Assert.Equal(MqttConnectReasonCode.Success, ack.ReasonCode);
        Assert.Equal(server.Broker.Options.ReceiveMaximum, ack.ReceiveMaximum);
        Assert.Equal((uint)server.Broker.Options.MaximumPacketSize, ack.MaximumPacketSize);
        Assert.Equal(server.Broker.Options.TopicAliasMaximum, ack.TopicAliasMaximum);
        Assert.False(ack.IsSessionPresent);
    }

    [Fact]
    public async Task Publish_before_connect_closes_the_connection()
    {
        await using var server = EngineServer.Start();
        await using var client = await RawMqttClient.OpenAsync(server.Port, MqttProtocolVersion.V311);
        await client.SendAsync(Publish("t", "x", MqttQualityOfServiceLevel.AtMostOnce));
        Assert.Null(await client.ExpectClosedAsync());
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task Second_connect_is_a_protocol_error(MqttProtocolVersion version)
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "twice", version);
        await client.SendAsync(new MqttConnectPacket { ClientId = "twice", CleanSession = true });
        var disconnect = await client.ExpectClosedAsync();
        if (version == MqttProtocolVersion.V500)
        {
            Assert.Equal(MqttDisconnectReasonCode.ProtocolError, disconnect?.ReasonCode);
        }
    }

    [Fact]
    public async Task Unsupported_protocol_level_is_refused_with_return_code_1()
    {
        await using var server = EngineServer.Start();
        await using var client = await RawMqttClient.OpenAsync(server.Port, MqttProtocolVersion.V311);
        // CONNECT "MQTT" level 9
        await client.SendRawAsync([0x10, 0x0D, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x09, 0x02, 0x00, 0x3C, 0x00, 0x01, (byte)'a']);
        var connAck = await client.ReceiveAsync<MqttConnAckPacket>();
        Assert.Equal(MqttConnectReturnCode.ConnectionRefusedUnacceptableProtocolVersion, connAck.ReturnCode);
        Assert.Null(await client.ExpectClosedAsync());
    }

    [Fact]
    public async Task Client_that_never_sends_connect_is_closed_after_the_connect_timeout()
    {
        await using var server = EngineServer.Start(new IotRealtime.Broker.Engine.BrokerOptions { ConnectTimeoutSeconds = 1, SysInterval = 0 });
        await using var client = await RawMqttClient.OpenAsync(server.Port);
        Assert.Null(await client.ExpectClosedAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Authentication_method_we_do_not_support_is_refused_with_0x8C()
    {
        await using var server = EngineServer.Start();
        await using var client = await RawMqttClient.OpenAsync(server.Port);
        await client.SendAsync(new MqttConnectPacket { ClientId = "auth", CleanSession = true, AuthenticationMethod = "SCRAM-SHA-1" });
        var connAck = await client.ReceiveAsync<MqttConnAckPacket>();
        Assert.Equal(MqttConnectReasonCode.BadAuthenticationMethod, connAck.ReasonCode);
    }
}
