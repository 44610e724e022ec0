using System.Text;
using IotRealtime.Broker.Host.Transport;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Host;

/// <summary>The plain MQTT/TCP listener on our socket transport, and the Kestrel transport it can be switched back to.</summary>
public sealed class SocketTransportTests
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [Theory]
    [InlineData("Sockets")]
    [InlineData("Kestrel")]
    public async Task Packets_larger_than_the_receive_buffer_and_bursts_of_small_ones_arrive_whole_and_in_order(string transport)
    {
        await using var broker = await TestBroker.StartAsync(new Dictionary<string, string?> { ["Listeners:MqttTransport"] = transport });
        await using var subscriber = await MqttTestClient.ConnectAsync(broker, MqttProtocolVersion.V500);
        await subscriber.SubscribeAsync("big/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await using var publisher = await MqttTestClient.ConnectAsync(broker, MqttProtocolVersion.V311);

        var large = new string('L', 300_000); // many times the 4 KB receive buffer: it must grow and shrink back
        await publisher.PublishAsync("big/large", large);
        for (var i = 0; i < 500; i++)
        {
            await publisher.PublishAsync("big/small", i.ToString(), MqttQualityOfServiceLevel.AtMostOnce);
        }

        await Wait.UntilAsync(() => subscriber.Received.Count == 501, Timeout, "the large message and 500 small ones");
        var received = subscriber.Received;
        Assert.Equal(large, received[0].Payload);
        Assert.Equal(Enumerable.Range(0, 500).Select(i => i.ToString()), received.Skip(1).Select(m => m.Payload));
    }

    [Fact]
    public async Task Socket_listener_serves_raw_clients_and_releases_closed_connections()
    {
        await using var broker = await TestBroker.StartAsync();
        for (var i = 0; i < 20; i++)
        {
            var (client, ack) = await RawMqttClient.ConnectAsync(broker.MqttPort, "raw-" + i);
            Assert.Equal(MqttConnectReasonCode.Success, ack.ReasonCode);
            await client.DisposeAsync();
        }
        var listener = Assert.IsType<SocketListener>(broker.Host.Services.GetService(typeof(SocketListener)));
        await Wait.UntilAsync(() => broker.Host.Broker.ConnectedClients == 0 && listener.Connections == 0, Timeout, "closed connections to be released");
    }
}
