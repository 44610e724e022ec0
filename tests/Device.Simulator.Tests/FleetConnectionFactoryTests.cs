using IotRealtime.Device.Simulator.Fleet;
using MQTTnet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The socket buffers the fleet's MQTTnet clients ask for.</summary>
public sealed class FleetConnectionFactoryTests
{
    static MqttClientTcpOptions Tcp(MqttClientOptions options) => Assert.IsType<MqttClientTcpOptions>(options.ChannelOptions);

    [Fact]
    public void Devices_keep_the_client_librarys_small_socket_buffers_and_the_verifier_asks_for_a_stream_sized_one()
    {
        Assert.True(FleetOptions.TryParse(["--devices", "1"], out var options, out var error), error);
        var factory = new FleetConnectionFactory(options);

        var device = Tcp(factory.Build("dev-0", source: null, redirect: null, cleanStart: true));
        var verifier = Tcp(factory.Build("verify-0", source: null, redirect: null, cleanStart: true,
            socketBufferBytes: FleetConnectionFactory.StreamBufferBytes));

        Assert.Equal(new MqttClientTcpOptions().BufferSize, device.BufferSize);
        Assert.True(device.BufferSize < 64 * 1024, $"a device's buffer grew to {device.BufferSize} bytes: a million devices pay for it");
        Assert.Equal(1 << 20, verifier.BufferSize);
        Assert.True(verifier.NoDelay && device.NoDelay);
    }
}
