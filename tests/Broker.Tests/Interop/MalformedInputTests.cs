using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>Garbage on the wire (sent by a raw-socket python script) closes that connection and nothing else.</summary>
public sealed class MalformedInputTests
{
    // A short CONNECT deadline so a truncated CONNECT is closed within the test's wait.
    private static readonly Dictionary<string, string?> Settings = new() { ["Broker:ConnectTimeoutSeconds"] = "2" };

    [Theory]
    [InlineData("bad-remaining-length")]
    [InlineData("publish-before-connect")]
    [InlineData("truncated-connect")]
    [InlineData("random-bytes")]
    [InlineData("garbage-after-connect")]
    public async Task Broker_closes_connection_on_malformed_input_and_keeps_serving_others(string @case)
    {
        await using var broker = await TestBroker.StartAsync(Settings);
        await using var bystander = await MqttTestClient.ConnectAsync(broker);
        await bystander.SubscribeAsync("interop/after-garbage");

        await using (var garbage = ExternalProcess.Start(ExternalTools.Python,
            ["-u", ExternalTools.Script("raw_garbage.py"), "--port", broker.MqttPort.ToString(), "--case", @case, "--timeout", "10"]))
        {
            Assert.Equal(0, await garbage.WaitForExitAsync(Timeouts.Default));
            Assert.Contains("CLOSED", garbage.Lines);
            if (@case == "garbage-after-connect") Assert.Contains("RECEIVED 20020000", garbage.Lines); // CONNACK accepted, then the close
            else Assert.DoesNotContain(garbage.Lines, l => l.StartsWith("RECEIVED 20", StringComparison.Ordinal)); // never a CONNACK
        }

        Assert.True(bystander.Client.IsConnected, "a client on another connection was disconnected by someone else's garbage");
        await using var publisher = await MqttTestClient.ConnectAsync(broker);
        await publisher.PublishAsync("interop/after-garbage", "still serving", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("still serving", (await bystander.WaitForMessageAsync("interop/after-garbage", Timeouts.Default)).Payload);

        await MosquittoClients.PubAsync(broker, "interop/after-garbage", "mosquitto_pub too", 1, "mqttv5");
        Assert.Equal("mosquitto_pub too", (await bystander.WaitForMessageAsync(m => m.Payload == "mosquitto_pub too", Timeouts.Default)).Payload);
    }
}
