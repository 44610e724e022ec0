using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>The few Linux epoll calls the readiness loop needs.</summary>
internal static class Epoll
{
    public const uint In = 0x001;
    public const uint Err = 0x008;
    public const uint Hup = 0x010;
    public const uint RdHup = 0x2000;
    public const uint OneShot = 1u << 30;

    const int CtlAdd = 1;
    const int CtlDel = 2;
    const int CtlMod = 3;
    const int CloseOnExec = 0x80000;

    // struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned elsewhere (16 bytes)
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    public static bool IsSupported => OperatingSystem.IsLinux();

    public static int Create()
    {
        var fd = epoll_create1(CloseOnExec);
        return fd >= 0 ? fd : throw new IOException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Adds or re-arms <paramref name="fd"/>; returns the errno (0 on success).</summary>
    public static int Arm(int epoll, int fd, uint events, ulong data, bool add)
    {
        Span<byte> ev = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(ev, events);
        BinaryPrimitives.WriteUInt64LittleEndian(ev[DataOffset..], data);
        return epoll_ctl(epoll, add ? CtlAdd : CtlMod, fd, ref MemoryMarshal.GetReference(ev)) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public static void Remove(int epoll, int fd)
    {
        Span<byte> ev = stackalloc byte[16];
        _ = epoll_ctl(epoll, CtlDel, fd, ref MemoryMarshal.GetReference(ev));
    }

    /// <summary>Waits for events into <paramref name="events"/> (a pinned buffer); returns how many, 0 on timeout or interruption.</summary>
    public static int Wait(int epoll, byte[] events, int timeoutMs)
    {
        var n = epoll_wait(epoll, ref MemoryMarshal.GetArrayDataReference(events), events.Length / EventSize, timeoutMs);
        if (n >= 0)
        {
            return n;
        }
        var errno = Marshal.GetLastPInvokeError();
        return errno == 4 ? 0 : throw new IOException($"epoll_wait failed: errno {errno}"); // EINTR: wait again
    }

    public static (uint Events, ulong Data) Read(byte[] events, int index)
    {
        var ev = events.AsSpan(index * EventSize, EventSize);
        return (BinaryPrimitives.ReadUInt32LittleEndian(ev), BinaryPrimitives.ReadUInt64LittleEndian(ev[DataOffset..]));
    }

    public static void Close(int fd) => _ = close(fd);

    [DllImport("libc", SetLastError = true)]
    static extern int epoll_create1(int flags);

    [DllImport("libc", SetLastError = true)]
    static extern int epoll_ctl(int epfd, int op, int fd, ref byte ev);

    [DllImport("libc", SetLastError = true)]
    static extern int epoll_wait(int epfd, ref byte events, int maxevents, int timeout);

    [DllImport("libc", SetLastError = true)]
    static extern int close(int fd);
}
