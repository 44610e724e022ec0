using System.Net;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Broker.Engine.Security;
using Microsoft.AspNetCore.Http;

namespace IotRealtime.Bridges.Auth;

/// <summary>Who is asking, for one request: the token's user when a token is required (or given), else anonymous.</summary>
public sealed class BridgeAuth(TokenService tokens, bool requireToken)
{
    int _nextId;

    public bool RequireToken => requireToken;

    public TokenService Tokens => tokens;

    /// <summary>The identity the ACL sees, or null when a token is required and missing, malformed or expired.</summary>
    public ClientIdentity? Authenticate(HttpContext context)
    {
        var token = context.Request.Query["token"].FirstOrDefault();
        if (token is null && context.Request.Headers.Authorization.FirstOrDefault() is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = header["Bearer ".Length..].Trim();
        }
        string? username = null;
        if (token is not null && !tokens.TryValidate(token, out username))
        {
            return null;
        }
        if (token is null && requireToken) return null;
        // the client id is what ACL patterns see as %c: one per browser connection
        return new ClientIdentity($"bridge-{Interlocked.Increment(ref _nextId)}", username);
    }

    /// <summary>The key per-client limits count under: the user when there is one, else the remote address.</summary>
    public static string ClientKey(HttpContext context, ClientIdentity identity) =>
        identity.Username is { } user ? "user:" + user : "ip:" + (context.Connection.RemoteIpAddress ?? IPAddress.None);

    public static bool RequiresTokenFor(BridgesOptions options, bool brokerAuthOn) => options.RequireToken ?? brokerAuthOn;
}
