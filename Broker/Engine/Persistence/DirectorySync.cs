using System.Runtime.InteropServices;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// fsync of a directory: on POSIX file systems a file's fsync does not make its name durable, so a created or renamed
/// log file could vanish in a power loss along with records already reported durable. .NET opens no directory handle,
/// hence the libc calls. Windows journals names with the file system's metadata and needs nothing here.
/// </summary>
internal static class DirectorySync
{
    const int ReadOnly = 0; // O_RDONLY on every POSIX system .NET runs on

    /// <exception cref="IOException">The directory could not be opened or synced.</exception>
    public static void Flush(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var fd = Native.open(directory, ReadOnly);
        if (fd < 0)
        {
            throw new IOException($"Cannot open directory '{directory}' to sync it (errno {Marshal.GetLastPInvokeError()}).");
        }
        try
        {
            if (Native.fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            _ = Native.close(fd);
        }
    }

    static class Native
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc")]
        public static extern int close(int fd);
    }
}
