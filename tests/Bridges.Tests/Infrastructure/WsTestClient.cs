using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace IotRealtime.Bridges.Tests.Infrastructure;

/// <summary>A ClientWebSocket speaking the bridges' multiplexed protocol: JSON commands out, JSON frames in.</summary>
public sealed class WsTestClient : IAsyncDisposable
{
    readonly ClientWebSocket _socket;

    WsTestClient(ClientWebSocket socket) => _socket = socket;

    public ClientWebSocket Socket => _socket;

    public static async Task<WsTestClient> ConnectAsync(Uri uri, string? origin = null)
    {
        var socket = new ClientWebSocket();
        if (origin is not null) socket.Options.SetRequestHeader("Origin", origin);
        socket.Options.CollectHttpResponseDetails = true;
        try
        {
            await socket.ConnectAsync(uri, CancellationToken.None).WaitAsync(Timeouts.Default);
        }
        catch
        {
            // the status of a refused upgrade stays readable through the exception's socket
            throw new WebSocketRefusedException(socket.HttpStatusCode, socket);
        }
        return new WsTestClient(socket);
    }

    public Task SendAsync(object command) => SendTextAsync(JsonSerializer.Serialize(command));

    public Task SendTextAsync(string text) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None).WaitAsync(Timeouts.Default);

    /// <summary>The next frame as JSON; throws when the server closes.</summary>
    public async Task<JsonElement> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeouts.Default);
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            WebSocketReceiveResult result;
            try
            {
                result = await _socket.ReceiveAsync(buffer, cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("no WebSocket frame in time");
            }
            if (result.MessageType == WebSocketMessageType.Close) throw new WebSocketClosedException(result.CloseStatus, result.CloseStatusDescription);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage) break;
        }
        return JsonDocument.Parse(message.ToArray()).RootElement.Clone();
    }

    /// <summary>Frames until one satisfies <paramref name="predicate"/> (the ones before it are returned too, in order).</summary>
    public async Task<List<JsonElement>> ReceiveUntilAsync(Func<JsonElement, bool> predicate, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Timeouts.Default);
        var frames = new List<JsonElement>();
        while (true)
        {
            var frame = await ReceiveAsync(deadline - DateTime.UtcNow);
            frames.Add(frame);
            if (predicate(frame)) return frames;
        }
    }

    /// <summary>Skips frames until one with <c>"ev"</c> = <paramref name="ev"/> (and channel, when given).</summary>
    public async Task<JsonElement> ReceiveEventAsync(string ev, string? ch = null, TimeSpan? timeout = null)
    {
        var frames = await ReceiveUntilAsync(f => f.TryGetProperty("ev", out var e) && e.GetString() == ev
            && (ch is null || (f.TryGetProperty("ch", out var c) && c.GetString() == ch)), timeout);
        return frames[^1];
    }

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
            }
        }
        _socket.Dispose();
    }
}

public sealed class WebSocketClosedException(WebSocketCloseStatus? status, string? description)
    : Exception($"the server closed the WebSocket: {status} {description}")
{
    public WebSocketCloseStatus? Status { get; } = status;
    public string? Description { get; } = description;
}

public sealed class WebSocketRefusedException(System.Net.HttpStatusCode status, ClientWebSocket socket)
    : Exception($"the WebSocket upgrade was refused: {(int)status}")
{
    public System.Net.HttpStatusCode Status { get; } = status;

    internal ClientWebSocket Socket { get; } = socket;
}
