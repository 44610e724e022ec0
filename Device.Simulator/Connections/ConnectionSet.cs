using System.Net.Sockets;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>
/// The open connections of a run, one slot per connection index; an idle connection costs the simulator one
/// socket and nothing else (no buffers, no tasks).
/// </summary>
public sealed class ConnectionSet(int capacity)
{
    readonly Socket?[] _sockets = new Socket?[capacity];
    readonly byte[] _drain = new byte[256];
    int _open;

    public int Open => Volatile.Read(ref _open);

    public void Add(int index, Socket socket)
    {
        _sockets[index] = socket;
        Interlocked.Increment(ref _open);
    }

    /// <summary>Sends PINGREQ on every open connection and discards what the broker sent (PINGRESPs). Returns how many failed.</summary>
    public int PingAll()
    {
        var failed = 0;
        for (var i = 0; i < _sockets.Length; i++)
        {
            var socket = _sockets[i];
            if (socket is null) continue;
            try
            {
                Drain(socket);
                socket.Send(MqttWire.PingReq, SocketFlags.None);
            }
            catch (SocketException)
            {
                Close(i);
                failed++;
            }
        }

        return failed;
    }

    /// <summary>Finds connections the broker closed (readable with nothing to read) and forgets them. Returns how many.</summary>
    public int SweepClosed()
    {
        var closed = 0;
        for (var i = 0; i < _sockets.Length; i++)
        {
            var socket = _sockets[i];
            if (socket is null) continue;
            try
            {
                if (!socket.Poll(0, SelectMode.SelectRead)) continue;
                if (socket.Available > 0)
                {
                    Drain(socket);
                    continue;
                }
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }

            Close(i);
            closed++;
        }

        return closed;
    }

    /// <summary>Sends DISCONNECT on every open connection and closes it.</summary>
    public void DisconnectAll()
    {
        for (var i = 0; i < _sockets.Length; i++)
        {
            var socket = _sockets[i];
            if (socket is null) continue;
            try
            {
                socket.Send(MqttWire.Disconnect, SocketFlags.None);
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
            }

            Close(i);
        }
    }

    void Drain(Socket socket)
    {
        while (socket.Available > 0) socket.Receive(_drain, SocketFlags.None);
    }

    void Close(int index)
    {
        _sockets[index]?.Dispose();
        _sockets[index] = null;
        Interlocked.Decrement(ref _open);
    }
}
