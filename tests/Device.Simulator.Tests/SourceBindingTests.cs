using System.Net;
using System.Net.Sockets;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Fleet.Raw;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>Sockets bound to a source address carry IP_BIND_ADDRESS_NO_PORT, so the port is chosen at connect (per 4-tuple).</summary>
public sealed class SourceBindingTests
{
    static readonly IPEndPoint Source = new(IPAddress.Parse("127.0.0.2"), 0);

    [Fact]
    public async Task A_dotnet_socket_bound_to_a_source_address_has_the_option_and_gets_its_port_at_connect()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        SourceBinding.Bind(socket, Source);

        var value = new byte[4];
        Assert.Equal(4, socket.GetRawSocketOption(SourceBinding.IpProtocolIp, SourceBinding.IpBindAddressNoPort, value));
        Assert.Equal(1, BitConverter.ToInt32(value));
        Assert.Equal(0, ((IPEndPoint)socket.LocalEndPoint!).Port);

        var accepting = listener.AcceptSocketAsync();
        await socket.ConnectAsync(listener.LocalEndpoint);
        using var accepted = await accepting;
        var peer = (IPEndPoint)accepted.RemoteEndPoint!;
        Assert.Equal(Source.Address, peer.Address);
        Assert.NotEqual(0, peer.Port);
    }

    [Fact]
    public void A_raw_device_socket_bound_to_a_source_address_has_the_option()
    {
        var fd = RawSocket.Open(Source, out var step);
        Assert.True(fd >= 0, $"{step}: {Libc.Describe(-fd)}");
        try
        {
            Assert.Equal(0, Libc.GetInt(fd, SourceBinding.IpProtocolIp, SourceBinding.IpBindAddressNoPort, out var value));
            Assert.Equal(1, value);
        }
        finally
        {
            Libc.Close(fd);
        }
    }

    [Fact]
    public void A_raw_device_socket_without_a_source_address_is_left_unbound()
    {
        var fd = RawSocket.Open(null, out _);
        Assert.True(fd >= 0);
        try
        {
            Assert.Equal(0, Libc.GetInt(fd, SourceBinding.IpProtocolIp, SourceBinding.IpBindAddressNoPort, out var value));
            Assert.Equal(0, value);
        }
        finally
        {
            Libc.Close(fd);
        }
    }
}
