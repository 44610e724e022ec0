using System.Security.Cryptography.X509Certificates;
using IotRealtime.Broker.Engine.Security;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Host.Auth;

/// <summary>
/// Authenticates CONNECT: a username is checked against the password file; with no username, a verified
/// client certificate's subject CN is the identity (when enabled); otherwise the client is anonymous.
/// </summary>
public sealed class PasswordAuthenticator : IMqttAuthenticator
{
    // Hashing a password takes a few hundred milliseconds of CPU; bound how many run at once so a burst of
    // CONNECTs cannot take every thread-pool thread from connections that are already up.
    const string CommonNameOid = "2.5.4.3";

    readonly SemaphoreSlim _hashing = new(Math.Max(1, Environment.ProcessorCount / 2));
    readonly PasswordFile? _passwords;
    readonly bool _allowAnonymous;
    readonly bool _useCertificateIdentity;
    readonly Lazy<PasswordHash> _decoy;
    readonly ILogger _logger;

    public PasswordAuthenticator(AuthOptions options, PasswordFile? passwords, ILogger<PasswordAuthenticator> logger)
    {
        _passwords = passwords;
        _allowAnonymous = options.EffectiveAllowAnonymous;
        _useCertificateIdentity = options.UseCertificateIdentity;
        _logger = logger;
        // Built on first use: hashing costs as much as a real check, which a host without password users never needs.
        _decoy = new(() => PasswordHash.Create("decoy"u8, passwords?.TypicalIterations ?? PasswordHash.DefaultIterations));
    }

    public async ValueTask<AuthenticationResult> AuthenticateAsync(AuthenticationRequest request, CancellationToken cancellationToken)
    {
        if (request.Username is null)
        {
            var certificateName = _useCertificateIdentity ? CertificateIdentity(request.ClientCertificate) : null;
            if (certificateName is not null) return AuthenticationResult.Accept(certificateName);
            if (_allowAnonymous) return AuthenticationResult.Accept(null);
            HostLog.AnonymousRejected(_logger, request.ClientId, request.Connection.RemoteEndPoint);
            return AuthenticationResult.Reject(AuthenticationFailure.NotAuthorized);
        }

        if (_passwords is null)
        {
            // No password file: a username is just a name, as in Mosquitto with allow_anonymous and no password_file.
            if (_allowAnonymous) return AuthenticationResult.Accept(request.Username);
            HostLog.PasswordRejected(_logger, request.ClientId, request.Username, request.Connection.RemoteEndPoint);
            return AuthenticationResult.Reject(AuthenticationFailure.BadUserNameOrPassword);
        }

        var known = _passwords.TryGet(request.Username, out var hash);
        var password = request.Password ?? ReadOnlyMemory<byte>.Empty;
        bool valid;
        await _hashing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // An unknown user costs as much as a known one, so timing does not reveal which names exist.
            valid = await Task.Run(() => (hash ?? _decoy.Value).Verify(password.Span), cancellationToken).ConfigureAwait(false) && known;
        }
        finally
        {
            _hashing.Release();
        }

        if (valid) return AuthenticationResult.Accept(request.Username);
        HostLog.PasswordRejected(_logger, request.ClientId, request.Username, request.Connection.RemoteEndPoint);
        return AuthenticationResult.Reject(AuthenticationFailure.BadUserNameOrPassword);
    }

    /// <summary>The subject CN of a certificate the TLS layer has already verified; null when there is none.</summary>
    public static string? CertificateIdentity(X509Certificate2? certificate)
    {
        if (certificate is null) return null;
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value == CommonNameOid)
            {
                var name = rdn.GetSingleElementValue();
                return string.IsNullOrEmpty(name) ? null : name;
            }
        }
        return null;
    }
}
