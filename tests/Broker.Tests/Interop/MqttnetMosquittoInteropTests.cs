using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>MQTTnet clients (TCP and WebSocket) exchanging messages with the Mosquitto command-line clients.</summary>
public sealed class MqttnetMosquittoInteropTests
{
    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttTransport.Tcp, "mqttv311")]
    [InlineData(MqttProtocolVersion.V500, MqttTransport.Tcp, "mqttv5")]
    [InlineData(MqttProtocolVersion.V500, MqttTransport.WebSocket, "mqttv311")]
    [InlineData(MqttProtocolVersion.V311, MqttTransport.WebSocket, "mqttv5")]
    public async Task Mqttnet_subscriber_receives_what_mosquitto_pub_sends(MqttProtocolVersion mqttnetVersion, MqttTransport transport, string mosquittoVersion)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var subscriber = await MqttTestClient.ConnectAsync(broker, mqttnetVersion, transport);
        await subscriber.SubscribeAsync("interop/to-mqttnet", MqttQualityOfServiceLevel.ExactlyOnce);

        await MosquittoClients.PubAsync(broker, "interop/to-mqttnet", "from mosquitto_pub", 2, mosquittoVersion);

        var message = await subscriber.WaitForMessageAsync("interop/to-mqttnet", Timeouts.Default);
        Assert.Equal(new ReceivedMessage("interop/to-mqttnet", "from mosquitto_pub", MqttQualityOfServiceLevel.ExactlyOnce, false), message);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttTransport.Tcp, "mqttv5")]
    [InlineData(MqttProtocolVersion.V500, MqttTransport.Tcp, "mqttv311")]
    [InlineData(MqttProtocolVersion.V500, MqttTransport.WebSocket, "mqttv5")]
    public async Task Mosquitto_sub_receives_what_mqttnet_publishes(MqttProtocolVersion mqttnetVersion, MqttTransport transport, string mosquittoVersion)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var sub = MosquittoClients.Sub(broker, "interop/from-mqttnet", 1, mosquittoVersion);
        await MosquittoClients.WaitForSubAckAsync(sub);

        await using var publisher = await MqttTestClient.ConnectAsync(broker, mqttnetVersion, transport);
        var result = await publisher.PublishAsync("interop/from-mqttnet", "from MQTTnet", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(result.IsSuccess, $"PUBACK reason {result.ReasonCode}");

        Assert.Equal(new MessageLine("interop/from-mqttnet", 1, false, "from MQTTnet"), await MosquittoClients.WaitForMessageAsync(sub));
    }
}
