using System.Net;
using System.Runtime.InteropServices;

namespace IotRealtime.Device.Simulator.Fleet.Raw;

/// <summary>
/// The Linux system calls the raw device mode makes on plain file descriptors: a connection costs the simulator an int,
/// no .NET Socket, SafeHandle or async context. Errors come back as errno values.
/// </summary>
public static unsafe partial class Libc
{
    const string Library = "libc";

    public const int AfInet = 2;
    public const int SockStream = 1;
    public const int SockNonBlock = 0x800;
    public const int SockCloexec = 0x80000;
    public const int SolSocket = 1;
    public const int SoError = 4;
    public const int IpProtoTcp = 6;
    public const int TcpNoDelay = 1;
    public const int MsgNoSignal = 0x4000;

    public const int EIntr = 4;
    public const int EAgain = 11;
    public const int EInProgress = 115;

    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;
    public const int EpollCtlMod = 3;
    public const uint EpollIn = 0x001;
    public const uint EpollOut = 0x004;
    public const uint EpollErr = 0x008;
    public const uint EpollHup = 0x010;
    public const uint EpollRdHup = 0x2000;

    /// <summary>struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned elsewhere (16 bytes).</summary>
    public static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport(Library, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Library, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, int* value, int length);

    [LibraryImport(Library, EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, int* value, int* length);

    [LibraryImport(Library, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, byte* address, int length);

    [LibraryImport(Library, EntryPoint = "connect", SetLastError = true)]
    public static partial int Connect(int fd, byte* address, int length);

    [LibraryImport(Library, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, byte* address, int* length);

    [LibraryImport(Library, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(Library, EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate1(int flags);

    [LibraryImport(Library, EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollCtl(int epoll, int operation, int fd, byte* epollEvent);

    [LibraryImport(Library, EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epoll, byte* events, int maxEvents, int timeoutMs);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>Fills a struct sockaddr_in (16 bytes): family in host order, port and address in network order.</summary>
    public static void WriteSockAddr(Span<byte> destination, IPEndPoint endPoint)
    {
        destination[..16].Clear();
        BitConverter.TryWriteBytes(destination, (ushort)AfInet);
        destination[2] = (byte)(endPoint.Port >> 8);
        destination[3] = (byte)endPoint.Port;
        endPoint.Address.TryWriteBytes(destination[4..8], out _);
    }

    public static int SetInt(int fd, int level, int name, int value) => SetSockOpt(fd, level, name, &value, sizeof(int));

    public static int GetInt(int fd, int level, int name, out int value)
    {
        int v = 0, length = sizeof(int);
        var result = GetSockOpt(fd, level, name, &v, &length);
        value = v;
        return result;
    }

    /// <summary>Adds or changes the watch on <paramref name="fd"/>, with <paramref name="data"/> coming back in its events.</summary>
    public static int EpollControl(int epoll, int operation, int fd, uint events, ulong data)
    {
        var buffer = stackalloc byte[16];
        *(uint*)buffer = events;
        *(ulong*)(buffer + EpollDataOffset) = data;
        return EpollCtl(epoll, operation, fd, buffer);
    }

    public static uint EventsAt(ReadOnlySpan<byte> events, int i) => BitConverter.ToUInt32(events[(i * EpollEventSize)..]);

    public static ulong DataAt(ReadOnlySpan<byte> events, int i) => BitConverter.ToUInt64(events[(i * EpollEventSize + EpollDataOffset)..]);
}
