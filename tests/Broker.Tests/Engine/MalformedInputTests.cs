using System.Net.Sockets;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>Bad input closes the offending connection with the right reason code and leaves everyone else served.</summary>
public sealed class MalformedInputTests
{
    // CONNECT v5 "bad" clean start, then the malformed bytes of each case
    public static TheoryData<string, byte[], MqttDisconnectReasonCode?> Cases => new()
    {
        { "remaining length over four bytes", [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MqttDisconnectReasonCode.MalformedPacket },
        { "publish with QoS 3", [0x36, 0x05, 0x00, 0x01, (byte)'t', 0x00, 0x01], MqttDisconnectReasonCode.MalformedPacket },
        { "qos 0 publish with DUP", [0x38, 0x04, 0x00, 0x01, (byte)'t', 0x00], MqttDisconnectReasonCode.MalformedPacket },
        { "invalid UTF-8 in topic", [0x30, 0x05, 0x00, 0x02, 0xC3, 0x28, 0x00], MqttDisconnectReasonCode.MalformedPacket },
        { "U+0000 in topic", [0x30, 0x05, 0x00, 0x02, (byte)'a', 0x00, 0x00], MqttDisconnectReasonCode.MalformedPacket },
        { "wildcard in publish topic", [0x30, 0x06, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'#', 0x00], MqttDisconnectReasonCode.TopicNameInvalid },
        { "subscribe with reserved flags 0", [0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x02, (byte)'a', (byte)'b', 0x00], MqttDisconnectReasonCode.MalformedPacket },
        { "subscribe without filters", [0x82, 0x03, 0x00, 0x01, 0x00], MqttDisconnectReasonCode.ProtocolError },
        { "reserved packet type 0", [0x00, 0x00], MqttDisconnectReasonCode.MalformedPacket },
        { "truncated properties", [0x30, 0x04, 0x00, 0x01, (byte)'t', 0x09], MqttDisconnectReasonCode.MalformedPacket },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Malformed_packet_closes_the_connection_with_a_reason_and_the_broker_keeps_serving(string what, byte[] bytes, MqttDisconnectReasonCode? expected)
    {
        await using var server = EngineServer.Start();
        var (bystander, _) = await RawMqttClient.ConnectAsync(server.Port, "bystander");
        await bystander.SendAsync(Subscribe(1, "alive", MqttQualityOfServiceLevel.AtMostOnce));
        await bystander.ReceiveAsync<MqttSubAckPacket>();

        var (bad, _) = await RawMqttClient.ConnectAsync(server.Port, "bad");
        await bad.SendRawAsync(bytes);
        var disconnect = await bad.ExpectClosedAsync();
        Assert.True(expected == disconnect?.ReasonCode, $"{what}: expected {expected}, got {disconnect?.ReasonCode.ToString() ?? "no DISCONNECT"}");

        var (good, _) = await RawMqttClient.ConnectAsync(server.Port, "good");
        await good.SendAsync(Publish("alive", "yes", MqttQualityOfServiceLevel.AtMostOnce));
        Assert.Equal("yes", (await bystander.ReceiveAsync<MqttPublishPacket>()).Text());
        // the broker lingers up to 2 s for the peer to close first; on a loaded machine more
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 2, Timeouts.Default, "the bad connection to be released");
    }

    [Fact]
    public async Task Random_garbage_and_half_packets_leave_the_broker_serving_and_nothing_leaks()
    {
        await using var server = EngineServer.Start();
        var random = new Random(1234);
        for (var i = 0; i < 50; i++)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync("127.0.0.1", server.Port);
            var garbage = new byte[random.Next(1, 300)];
            random.NextBytes(garbage);
            if (i % 2 == 0)
            {
                garbage[0] = 0x10; // looks like CONNECT, then nonsense
            }
            await tcp.GetStream().WriteAsync(garbage);
        }
        // a truncated CONNECT (claims 100 bytes, sends 3) followed by an abrupt close
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync("127.0.0.1", server.Port);
            await tcp.GetStream().WriteAsync(new byte[] { 0x10, 0x64, 0x00 });
        }
        await Wait.UntilAsync(() => server.Broker.ConnectedClients == 0, TimeSpan.FromSeconds(15), "every garbage connection to be released");
        var (client, ack) = await RawMqttClient.ConnectAsync(server.Port, "after", MqttProtocolVersion.V311);
        Assert.Equal(MqttConnectReturnCode.ConnectionAccepted, ack.ReturnCode);
        await client.SendAsync(new MqttPingReqPacket());
        await client.ReceiveAsync<MqttPingRespPacket>();
    }
}
