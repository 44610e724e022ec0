using System.Net;
using System.Net.Sockets;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>
/// Binds an outgoing socket to a source address with IP_BIND_ADDRESS_NO_PORT, so the kernel picks the source port at
/// connect time for the whole 4-tuple: one source address then carries ~28k connections to each destination address,
/// not ~28k in all, and source addresses and broker addresses multiply.
/// </summary>
public static class SourceBinding
{
    /// <summary>IPPROTO_IP option 24 on Linux (linux/in.h).</summary>
    public const int IpBindAddressNoPort = 24;

    public const int IpProtocolIp = 0;

    /// <summary>Sets IP_BIND_ADDRESS_NO_PORT where the OS has it (Linux), then binds.</summary>
    public static void Bind(Socket socket, IPEndPoint source)
    {
        if (OperatingSystem.IsLinux() && source.Port == 0)
            socket.SetRawSocketOption(IpProtocolIp, IpBindAddressNoPort, BitConverter.GetBytes(1));
        socket.Bind(source);
    }
}
