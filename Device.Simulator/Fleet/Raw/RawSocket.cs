using System.Net;
using IotRealtime.Device.Simulator.Connections;

namespace IotRealtime.Device.Simulator.Fleet.Raw;

/// <summary>Opens the non-blocking TCP socket of a raw device, bound to its source address with IP_BIND_ADDRESS_NO_PORT.</summary>
public static unsafe class RawSocket
{
    /// <summary>A socket file descriptor, or −errno, with <paramref name="failedStep"/> naming the call that failed.</summary>
    public static int Open(IPEndPoint? source, out string failedStep)
    {
        failedStep = "socket";
        var fd = Libc.Socket(Libc.AfInet, Libc.SockStream | Libc.SockNonBlock | Libc.SockCloexec, 0);
        if (fd < 0) return -Libc.Errno;
        Libc.SetInt(fd, Libc.IpProtoTcp, Libc.TcpNoDelay, 1);
        if (source is null) return fd;

        // The source port is chosen at connect for the whole 4-tuple, so one address serves every broker address.
        Libc.SetInt(fd, SourceBinding.IpProtocolIp, SourceBinding.IpBindAddressNoPort, 1);
        var address = stackalloc byte[16];
        Libc.WriteSockAddr(new Span<byte>(address, 16), source);
        if (Libc.Bind(fd, address, 16) == 0) return fd;
        var errno = Libc.Errno;
        Libc.Close(fd);
        failedStep = $"bind {source.Address}";
        return -errno;
    }

    /// <summary>Starts a non-blocking connect: 0 when under way or done, else errno.</summary>
    public static int StartConnect(int fd, IPEndPoint target)
    {
        var address = stackalloc byte[16];
        Libc.WriteSockAddr(new Span<byte>(address, 16), target);
        if (Libc.Connect(fd, address, 16) == 0) return 0;
        var errno = Libc.Errno;
        return errno == Libc.EInProgress ? 0 : errno;
    }
}
