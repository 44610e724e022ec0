using System.Net;
using IotRealtime.Bridges.Auth;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Fleet;
using IotRealtime.Bridges.Operations;
using Microsoft.AspNetCore.Http;

namespace IotRealtime.Bridges.WebSockets;

/// <summary>GET /ws[?token=…]: the multiplexed WebSocket (docs/bridges.md).</summary>
sealed class WsEndpoint(BridgesOptions options, FeedHub hub, IHistorySource history, IBrokerLink broker, BridgeAuth auth,
    StreamRegistry registry, BridgeMetrics metrics, TimeProvider time)
{
    public async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await BridgeHttp.Error(context, StatusCodes.Status400BadRequest, "GET /ws expects a WebSocket upgrade").ConfigureAwait(false);
            return;
        }
        if (!OriginAllowed(context, options.AllowedOrigins))
        {
            await BridgeHttp.Error(context, StatusCodes.Status403Forbidden, $"origin '{context.Request.Headers.Origin}' is not allowed (Bridges:AllowedOrigins)").ConfigureAwait(false);
            return;
        }
        if (auth.Authenticate(context) is not { } identity)
        {
            metrics.RejectedAuth();
            await BridgeHttp.Error(context, StatusCodes.Status401Unauthorized, "a valid token is required: POST /api/token, then pass it as ?token=").ConfigureAwait(false);
            return;
        }
        if (registry.Draining)
        {
            context.Response.Headers.RetryAfter = "5";
            await BridgeHttp.Error(context, StatusCodes.Status503ServiceUnavailable, "the server is draining: reconnect to another instance").ConfigureAwait(false);
            return;
        }
        var ws = options.WebSocket;
        var clientKey = "ws|" + BridgeAuth.ClientKey(context, identity);
        if (!registry.TryAcquire(clientKey, ws.MaxSocketsPerClient))
        {
            metrics.RejectedLimit();
            await BridgeHttp.Error(context, StatusCodes.Status429TooManyRequests, $"at most {ws.MaxSocketsPerClient} WebSockets per client").ConfigureAwait(false);
            return;
        }
        try
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                // pings every KeepAliveSeconds; no pong within the rest of the idle timeout aborts the socket, so a
                // dead peer is found within IdleTimeoutSeconds
                KeepAliveInterval = TimeSpan.FromSeconds(ws.KeepAliveSeconds),
                KeepAliveTimeout = TimeSpan.FromSeconds(ws.IdleTimeoutSeconds - ws.KeepAliveSeconds),
                DangerousEnableCompression = false,
            }).ConfigureAwait(false);
            var connection = new WsConnection(socket, ws, hub, history, broker, metrics, identity, time, context.Abort);
            registry.Add(connection);
            metrics.WebSocketOpened();
            try
            {
                await connection.RunAsync(context.RequestAborted).ConfigureAwait(false);
            }
            finally
            {
                registry.Remove(connection);
                metrics.WebSocketClosed();
                if (socket.State == System.Net.WebSockets.WebSocketState.Aborted && !context.RequestAborted.IsCancellationRequested && !connection.ClosedByServer) metrics.IdleClosed();
            }
        }
        finally
        {
            registry.Release(clientKey);
        }
    }

    /// <summary>No Origin (not a browser), the same origin, a loopback origin, or one listed in Bridges:AllowedOrigins.</summary>
    internal static bool OriginAllowed(HttpContext context, IReadOnlyList<string> allowed)
    {
        var origin = context.Request.Headers.Origin.FirstOrDefault();
        if (string.IsNullOrEmpty(origin)) return true;
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri)) return false;
        if (string.Equals(uri.Authority, context.Request.Host.Value, StringComparison.OrdinalIgnoreCase)) return true;
        if (uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip))) return true;
        foreach (var entry in allowed)
        {
            if (entry == "*" || string.Equals(entry.TrimEnd('/'), origin.TrimEnd('/'), StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }
}
