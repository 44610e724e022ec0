using System.Buffers;
using System.Net.Sockets;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>What the socket reader and writer share: giving a pooled buffer back, and shutting a socket side down when it may already be gone.</summary>
internal static class SocketBuffers
{
    public static void Return(ref byte[]? buffer)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
        }
    }

    public static void TryShutdown(Socket socket, SocketShutdown how)
    {
        try
        {
            socket.Shutdown(how);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // already closed: nothing left to shut down
        }
    }
}
