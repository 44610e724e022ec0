using System.Net;
using System.Text;
using System.Text.Json;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Security;
using Microsoft.AspNetCore.Http;

namespace IotRealtime.Bridges.Auth;

/// <summary>POST /api/token {"username","password"} → {"token","expiresAt"}: the broker's own authenticator checks the password.</summary>
sealed class TokenEndpoint(IMqttAuthenticator authenticator, BridgeAuth auth)
{
    const int MaxBody = 4096;

    public async Task HandleAsync(HttpContext context)
    {
        string? username = null;
        string? password = null;
        try
        {
            if (context.Request.ContentLength is > MaxBody)
            {
                await BridgeHttp.Error(context, StatusCodes.Status413PayloadTooLarge, "body too large").ConfigureAwait(false);
                return;
            }
            using var document = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted).ConfigureAwait(false);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("username", out var u) && u.ValueKind == JsonValueKind.String) username = u.GetString();
                if (root.TryGetProperty("password", out var p) && p.ValueKind == JsonValueKind.String) password = p.GetString();
            }
        }
        catch (JsonException)
        {
            await BridgeHttp.Error(context, StatusCodes.Status400BadRequest, "expected a JSON body {\"username\":\"…\",\"password\":\"…\"}").ConfigureAwait(false);
            return;
        }
        var connection = new Broker.Engine.ConnectionInfo("http", context.Connection.RemoteIpAddress is { } ip ? new IPEndPoint(ip, context.Connection.RemotePort) : null,
            null, context.Request.IsHttps, null);
        var request = new AuthenticationRequest("bridges-token", string.IsNullOrEmpty(username) ? null : username,
            password is null ? null : Encoding.UTF8.GetBytes(password), null, connection);
        var result = await authenticator.AuthenticateAsync(request, context.RequestAborted).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            await BridgeHttp.Error(context, StatusCodes.Status401Unauthorized, "bad username or password").ConfigureAwait(false);
            return;
        }
        var (token, expiresAt) = auth.Tokens.Issue(result.Username);
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        await using var json = new Utf8JsonWriter(context.Response.BodyWriter);
        json.WriteStartObject();
        json.WriteString("token", token);
        json.WriteString("expiresAt", Feed.EventJson.Timestamp(expiresAt));
        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
