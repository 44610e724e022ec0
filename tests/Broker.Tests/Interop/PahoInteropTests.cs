using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>Eclipse Paho's Python client (Debian python3-paho-mqtt) over TCP and over WebSocket at /mqtt.</summary>
public sealed class PahoInteropTests
{
    [Theory]
    [InlineData("tcp", "tcp", 0, "311")]
    [InlineData("tcp", "tcp", 1, "5")]
    [InlineData("tcp", "tcp", 2, "311")]
    [InlineData("websockets", "websockets", 1, "311")]
    [InlineData("websockets", "websockets", 2, "5")]
    [InlineData("websockets", "tcp", 1, "5")]
    [InlineData("tcp", "websockets", 2, "311")]
    public async Task Paho_subscriber_receives_what_paho_publisher_sends(string subTransport, string pubTransport, int qos, string version)
    {
        await using var broker = await TestBroker.StartAsync();
        var topic = $"interop/paho/{subTransport}-{pubTransport}";
        var payload = $"paho qos {qos} over {pubTransport} {Guid.NewGuid():N}";

        await using var sub = await PahoScripts.SubscribeAsync(broker, subTransport, topic, qos, version);
        await PahoScripts.PublishAsync(broker, pubTransport, topic, payload, qos, version);

        Assert.Equal(new MessageLine(topic, qos, false, payload), await MosquittoClients.WaitForMessageAsync(sub));
        Assert.Equal(0, await sub.WaitForExitAsync(Timeouts.Default));
    }

    [Theory]
    [InlineData("tcp")]
    [InlineData("websockets")]
    public async Task Late_paho_subscriber_receives_retained_message(string transport)
    {
        await using var broker = await TestBroker.StartAsync();
        await PahoScripts.PublishAsync(broker, transport, "interop/paho/retained", "last known value", 1, retain: true);

        await using var sub = PahoScripts.Start("paho_sub.py", broker, transport, "--topic", "interop/paho/retained", "--qos", "1");

        Assert.Equal(new MessageLine("interop/paho/retained", 1, true, "last known value"), await MosquittoClients.WaitForMessageAsync(sub));
    }

    [Fact]
    public async Task Paho_over_websocket_and_mqttnet_over_tcp_exchange_messages_both_ways()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var mqttnet = await MqttTestClient.ConnectAsync(broker, MqttProtocolVersion.V500);
        await mqttnet.SubscribeAsync("interop/paho/to-mqttnet", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var sub = await PahoScripts.SubscribeAsync(broker, "websockets", "interop/paho/from-mqttnet", 1, "5");

        await PahoScripts.PublishAsync(broker, "websockets", "interop/paho/to-mqttnet", "paho to mqttnet", 1, "5");
        await mqttnet.PublishAsync("interop/paho/from-mqttnet", "mqttnet to paho");

        Assert.Equal("paho to mqttnet", (await mqttnet.WaitForMessageAsync("interop/paho/to-mqttnet", Timeouts.Default)).Payload);
        Assert.Equal(new MessageLine("interop/paho/from-mqttnet", 1, false, "mqttnet to paho"), await MosquittoClients.WaitForMessageAsync(sub));
    }
}
