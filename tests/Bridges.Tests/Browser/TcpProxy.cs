using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>
/// A loopback TCP forwarder between the browser and a server, so a test can break the browser's connections for real
/// (<see cref="DropAll"/> resets every socket mid-stream) or refuse requests for a path (the request line is read before
/// anything is forwarded; Chromium opens a fresh connection for each WebSocket, so a refused path covers upgrades).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly IPEndPoint _target;
    readonly CancellationTokenSource _stop = new();
    readonly ConcurrentDictionary<Socket, byte> _open = new();
    readonly ConcurrentQueue<string> _requests = new();
    readonly Task _acceptLoop;

    public TcpProxy(int targetPort)
    {
        _target = new IPEndPoint(IPAddress.Loopback, targetPort);
        _listener.Start();
        _acceptLoop = AcceptLoop();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    /// <summary>Requests for paths starting with one of these are answered by closing the connection unanswered.</summary>
    public List<string> RefusedPathPrefixes { get; } = [];

    /// <summary>
    /// The head (request line and headers) of the first request on each connection, in arrival order; later requests on a
    /// kept-alive connection are forwarded unread.
    /// </summary>
    public IReadOnlyList<string> RequestHeads => [.. _requests];

    /// <summary>Resets every open connection, both sides, as a network failure would.</summary>
    public int DropAll()
    {
        var dropped = 0;
        foreach (var socket in _open.Keys)
        {
            if (!_open.TryRemove(socket, out _)) continue;
            try
            {
                socket.LingerState = new LingerOption(true, 0); // close with RST, not a polite FIN
                socket.Close();
                dropped++;
            }
            catch (ObjectDisposedException)
            {
            }
        }
        return dropped;
    }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Serve(client);
        }
    }

    async Task Serve(Socket client)
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using (client)
        {
            try
            {
                var first = new byte[16 * 1024];
                var length = await client.ReceiveAsync(first, _stop.Token);
                if (length == 0) return;
                var head = Encoding.ASCII.GetString(first, 0, length);
                var headEnd = head.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                _requests.Enqueue(headEnd >= 0 ? head[..headEnd] : head);
                var path = head.Split(' ', 3) is [_, var p, ..] ? p : "";
                if (RefusedPathPrefixes.Any(prefix => path.StartsWith(prefix, StringComparison.Ordinal))) return;

                await server.ConnectAsync(_target, _stop.Token);
                _open[client] = 0;
                _open[server] = 0;
                await server.SendAsync(first.AsMemory(0, length), _stop.Token);
                // Half-closes pass through; an error on either side ends both.
                await Task.WhenAll(Pump(client, server), Pump(server, client));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
            finally
            {
                _open.TryRemove(client, out _);
                _open.TryRemove(server, out _);
            }
        }
    }

    async Task Pump(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, _stop.Token);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }
                await to.SendAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            from.Close();
            to.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        DropAll();
        await _acceptLoop;
        _stop.Dispose();
    }
}
