using IotRealtime.Broker.Tests.Infrastructure;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>Eclipse Mosquitto's command-line clients (mosquitto_pub, mosquitto_sub) against our broker.</summary>
public sealed class MosquittoInteropTests
{
    [Theory]
    [InlineData(0, "mqttv311")]
    [InlineData(1, "mqttv311")]
    [InlineData(2, "mqttv311")]
    [InlineData(0, "mqttv5")]
    [InlineData(1, "mqttv5")]
    [InlineData(2, "mqttv5")]
    public async Task Mosquitto_sub_receives_what_mosquitto_pub_sends_at_the_same_qos(int qos, string version)
    {
        await using var broker = await TestBroker.StartAsync();
        var topic = $"interop/mosquitto/{version}/qos{qos}";
        var payload = $"hello from mosquitto_pub qos {qos} {Guid.NewGuid():N}";

        await using var sub = MosquittoClients.Sub(broker, topic, qos, version);
        await MosquittoClients.WaitForSubAckAsync(sub);
        await MosquittoClients.PubAsync(broker, topic, payload, qos, version);

        var message = await MosquittoClients.WaitForMessageAsync(sub);
        Assert.Equal(new MessageLine(topic, qos, false, payload), message);
        Assert.Equal(0, await sub.WaitForExitAsync(Timeouts.Default));
    }

    [Theory]
    [InlineData("mqttv311", "mqttv5")]
    [InlineData("mqttv5", "mqttv311")]
    public async Task Mosquitto_sub_receives_from_mosquitto_pub_speaking_the_other_protocol_version(string subVersion, string pubVersion)
    {
        await using var broker = await TestBroker.StartAsync();
        var topic = "interop/mosquitto/cross-version";
        var payload = $"from {pubVersion} to {subVersion}";

        await using var sub = MosquittoClients.Sub(broker, topic, 1, subVersion);
        await MosquittoClients.WaitForSubAckAsync(sub);
        await MosquittoClients.PubAsync(broker, topic, payload, 1, pubVersion);

        Assert.Equal(new MessageLine(topic, 1, false, payload), await MosquittoClients.WaitForMessageAsync(sub));
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Late_mosquitto_sub_receives_retained_message_with_retain_flag(string version)
    {
        await using var broker = await TestBroker.StartAsync();
        var topic = "interop/mosquitto/retained";
        var payload = $"retained {Guid.NewGuid():N}";

        await MosquittoClients.PubAsync(broker, topic, payload, 1, version, "-r");
        await using var sub = MosquittoClients.Sub(broker, topic, 1, version);

        Assert.Equal(new MessageLine(topic, 1, true, payload), await MosquittoClients.WaitForMessageAsync(sub));
    }

    [Fact]
    public async Task Mosquitto_sub_wildcard_subscription_receives_matching_topics_only()
    {
        await using var broker = await TestBroker.StartAsync();

        await using var sub = MosquittoClients.Sub(broker, "interop/+/temperature", 1, "mqttv5", count: 2);
        await MosquittoClients.WaitForSubAckAsync(sub);
        await MosquittoClients.PubAsync(broker, "interop/kitchen/temperature", "21.5", 1, "mqttv5");
        await MosquittoClients.PubAsync(broker, "interop/kitchen/humidity", "40", 1, "mqttv5");
        await MosquittoClients.PubAsync(broker, "interop/garage/temperature", "9.0", 1, "mqttv5");

        Assert.Equal(0, await sub.WaitForExitAsync(Timeouts.Default));
        var received = sub.Lines.Where(MessageLine.Is).Select(MessageLine.Parse).ToList();
        Assert.Equal(
            [new MessageLine("interop/kitchen/temperature", 1, false, "21.5"), new MessageLine("interop/garage/temperature", 1, false, "9.0")],
            received);
    }
}
