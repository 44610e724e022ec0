using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;

namespace IotRealtime.Bridges.Auth;

/// <summary>
/// Short-lived bearer tokens for browsers: <c>base64url(json{u,exp}).base64url(HMAC-SHA256)</c>. A token names the
/// user the broker's authenticator accepted; the ACL for that user decides what the browser may see and publish.
/// </summary>
public sealed class TokenService
{
    readonly byte[] _key;
    readonly TimeSpan _lifetime;
    readonly TimeProvider _time;

    public TokenService(byte[] key, TimeSpan lifetime, TimeProvider time)
    {
        if (key.Length < 32) throw new ArgumentException("A token key needs at least 32 bytes.", nameof(key));
        _key = key;
        _lifetime = lifetime;
        _time = time;
    }

    public (string Token, DateTimeOffset ExpiresAt) Issue(string? username)
    {
        var expiresAt = _time.GetUtcNow() + _lifetime;
        var body = JsonSerializer.SerializeToUtf8Bytes(new TokenBody(username, expiresAt.ToUnixTimeSeconds()), TokenJsonContext.Default.TokenBody);
        var signature = HMACSHA256.HashData(_key, body);
        return (Base64Url.EncodeToString(body) + "." + Base64Url.EncodeToString(signature), DateTimeOffset.FromUnixTimeSeconds(expiresAt.ToUnixTimeSeconds()));
    }

    /// <summary>The token's user when it is well formed, correctly signed and not expired; otherwise false.</summary>
    public bool TryValidate(string? token, out string? username)
    {
        username = null;
        if (string.IsNullOrEmpty(token) || token.Length > 4096) return false;
        var dot = token.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0) return false;
        byte[] body, signature;
        try
        {
            body = Base64Url.DecodeFromChars(token.AsSpan(0, dot));
            signature = Base64Url.DecodeFromChars(token.AsSpan(dot + 1));
        }
        catch (FormatException)
        {
            return false;
        }
        if (!CryptographicOperations.FixedTimeEquals(signature, HMACSHA256.HashData(_key, body))) return false;
        TokenBody? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize(body, TokenJsonContext.Default.TokenBody);
        }
        catch (JsonException)
        {
            return false;
        }
        if (parsed is null || DateTimeOffset.FromUnixTimeSeconds(parsed.Exp) <= _time.GetUtcNow()) return false;
        username = parsed.U;
        return true;
    }

    public static byte[] KeyFrom(string? base64) => string.IsNullOrEmpty(base64) ? RandomNumberGenerator.GetBytes(32) : Convert.FromBase64String(base64);

}

public sealed record TokenBody(string? U, long Exp);

[System.Text.Json.Serialization.JsonSerializable(typeof(TokenBody))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class TokenJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
