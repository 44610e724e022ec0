using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace IotRealtime.Bridges.Tests.Infrastructure;

/// <summary>How the server ended a raw connection, and the first bytes it sent before that.</summary>
public sealed record RawClose(long BytesRead, string Head, bool Reset);

/// <summary>
/// A client that speaks HTTP and WebSocket by hand over a raw socket, so a test can misbehave as a real hostile client
/// does: trickle its request headers, never finish them, or stop reading its socket (with a tiny receive buffer).
/// </summary>
public sealed class RawHttpClient : IAsyncDisposable
{
    readonly Socket _socket;

    RawHttpClient(Socket socket) => _socket = socket;

    public Socket Socket => _socket;

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/>; a <paramref name="receiveBufferSize"/> set before connecting limits the window the client advertises.</summary>
    public static async Task<RawHttpClient> ConnectAsync(int port, int? receiveBufferSize = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (receiveBufferSize is { } size) socket.ReceiveBufferSize = size;
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(Timeouts.Default);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new RawHttpClient(socket);
    }

    /// <summary>A GET request's head up to (not including) the blank line that ends it.</summary>
    public static string RequestHead(string pathAndQuery, int port, params string[] headers) =>
        $"GET {pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + string.Concat(headers.Select(h => h + "\r\n"));

    /// <summary>The headers of a WebSocket upgrade (RFC 6455 section 4.1).</summary>
    public static string[] UpgradeHeaders() =>
    [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: " + Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)),
    ];

    public Task SendAsync(string text) => SendAsync(Encoding.ASCII.GetBytes(text));

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var sent = await _socket.SendAsync(bytes, SocketFlags.None).AsTask().WaitAsync(Timeouts.Default);
            bytes = bytes[sent..];
        }
    }

    /// <summary>Reads the response head (through the blank line) one byte at a time, so nothing after it is taken from the socket; returns the status line.</summary>
    public async Task<string> ReadResponseHeadAsync()
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await _socket.ReceiveAsync(one.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeouts.Default);
            if (n == 0) throw new EndOfStreamException("the server closed before the end of the response head: " + head);
            head.Append((char)one[0]);
        }
        return head.ToString()[..head.ToString().IndexOf("\r\n", StringComparison.Ordinal)];
    }

    /// <summary>Sends one masked text frame, as a browser does.</summary>
    public Task SendWebSocketTextAsync(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        if (payload.Length > 125) throw new ArgumentException("short frames only", nameof(text));
        var mask = RandomNumberGenerator.GetBytes(4);
        var frame = new byte[2 + 4 + payload.Length];
        frame[0] = 0x81; // FIN, text
        frame[1] = (byte)(0x80 | payload.Length);
        mask.CopyTo(frame, 2);
        for (var i = 0; i < payload.Length; i++) frame[6 + i] = (byte)(payload[i] ^ mask[i % 4]);
        return SendAsync(frame);
    }

    /// <summary>Reads until the server closes (end of stream or reset); throws <see cref="TimeoutException"/> when it has not within <paramref name="timeout"/>.</summary>
    public async Task<RawClose> ReadUntilClosedAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[64 * 1024];
        var head = new StringBuilder();
        long total = 0;
        while (true)
        {
            int n;
            try
            {
                n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the server did not close the connection within {timeout.TotalSeconds:0.#} s ({total} bytes read)");
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                return new RawClose(total, head.ToString(), Reset: true);
            }
            if (n == 0) return new RawClose(total, head.ToString(), Reset: false);
            if (head.Length < 256) head.Append(Encoding.ASCII.GetString(buffer, 0, Math.Min(n, 256 - head.Length)));
            total += n;
        }
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
