using System.Security.Cryptography.X509Certificates;

namespace IotRealtime.Broker.Engine.Security;

/// <summary>Decides whether a CONNECT is allowed. Called once per connection, off the publish hot path.</summary>
public interface IMqttAuthenticator
{
    ValueTask<AuthenticationResult> AuthenticateAsync(AuthenticationRequest request, CancellationToken cancellationToken);
}

public sealed record AuthenticationRequest(
    string ClientId,
    string? Username,
    ReadOnlyMemory<byte>? Password,
    X509Certificate2? ClientCertificate,
    ConnectionInfo Connection);

public enum AuthenticationFailure
{
    None = 0,
    /// <summary>MQTT 5 0x86 / 3.1.1 return code 4.</summary>
    BadUserNameOrPassword,
    /// <summary>MQTT 5 0x87 / 3.1.1 return code 5.</summary>
    NotAuthorized,
}

public readonly record struct AuthenticationResult(AuthenticationFailure Failure, string? Username)
{
    /// <summary>Accepted; <paramref name="username"/> is the identity ACL rules see as %u (e.g. a certificate subject).</summary>
    public static AuthenticationResult Accept(string? username) => new(AuthenticationFailure.None, username);

    public static AuthenticationResult Reject(AuthenticationFailure failure) => new(failure, null);

    public bool Succeeded => Failure == AuthenticationFailure.None;
}

/// <summary>Accepts every client; the identity is the username it sent. Used when anonymous access is allowed and no credentials are configured.</summary>
public sealed class AllowAllAuthenticator : IMqttAuthenticator
{
    public ValueTask<AuthenticationResult> AuthenticateAsync(AuthenticationRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AuthenticationResult.Accept(request.Username));
}
