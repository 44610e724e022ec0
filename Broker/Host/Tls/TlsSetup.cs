using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace IotRealtime.Broker.Host.Tls;

/// <summary>The loaded server certificate, its chain and the client CA roots, turned into Kestrel HTTPS options.</summary>
public sealed class TlsSetup
{
    TlsSetup(TlsOptions options, X509Certificate2 certificate, X509Certificate2Collection chain, X509Certificate2Collection? clientRoots)
    {
        Options = options;
        Certificate = certificate;
        Chain = chain;
        ClientRoots = clientRoots;
    }

    public TlsOptions Options { get; }

    public X509Certificate2 Certificate { get; }

    /// <summary>Intermediates sent after the leaf.</summary>
    public X509Certificate2Collection Chain { get; }

    /// <summary>The only roots client certificates may chain to; null = the system trust store.</summary>
    public X509Certificate2Collection? ClientRoots { get; }

    /// <summary>Loads certificate files named by <paramref name="options"/>; returns null (with errors added) when TLS is off or unusable.</summary>
    public static TlsSetup? Load(TlsOptions options, ICollection<string> errors)
    {
        var section = TlsOptions.Section;
        if (!options.Enabled)
        {
            if (options.ClientCertificateMode != TlsClientCertificateMode.None)
                errors.Add($"{section}:ClientCertificateMode is {options.ClientCertificateMode} but {section}:CertificatePath is not set; client certificates need TLS.");
            if (!string.IsNullOrWhiteSpace(options.KeyPath))
                errors.Add($"{section}:KeyPath is set but {section}:CertificatePath is not.");
            if (!string.IsNullOrWhiteSpace(options.ClientCaPath))
                errors.Add($"{section}:ClientCaPath is set but {section}:CertificatePath is not.");
            return null;
        }

        var certificatePath = options.CertificatePath!;
        var before = errors.Count;
        if (!File.Exists(certificatePath)) errors.Add($"{section}:CertificatePath: file '{certificatePath}' does not exist.");
        if (!string.IsNullOrWhiteSpace(options.KeyPath) && !File.Exists(options.KeyPath)) errors.Add($"{section}:KeyPath: file '{options.KeyPath}' does not exist.");

        X509Certificate2Collection? clientRoots = null;
        if (!string.IsNullOrWhiteSpace(options.ClientCaPath))
        {
            if (!File.Exists(options.ClientCaPath))
            {
                errors.Add($"{section}:ClientCaPath: file '{options.ClientCaPath}' does not exist.");
            }
            else
            {
                try
                {
                    clientRoots = [];
                    clientRoots.ImportFromPemFile(options.ClientCaPath);
                    if (clientRoots.Count == 0) errors.Add($"{section}:ClientCaPath: '{options.ClientCaPath}' holds no PEM certificate.");
                }
                catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
                {
                    errors.Add($"{section}:ClientCaPath: cannot read '{options.ClientCaPath}': {e.Message}");
                }
            }
        }
        if (errors.Count > before) return null;

        try
        {
            var (certificate, chain) = LoadServerCertificate(options);
            if (!certificate.HasPrivateKey)
            {
                errors.Add($"{section}:CertificatePath: '{certificatePath}' has no private key; set {section}:KeyPath to the PEM key file.");
                return null;
            }
            return new TlsSetup(options, certificate, chain, clientRoots);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            var key = string.IsNullOrWhiteSpace(options.KeyPath) ? "CertificatePath" : "CertificatePath/KeyPath";
            errors.Add($"{section}:{key}: cannot load the certificate from '{certificatePath}': {e.Message}");
            return null;
        }
    }

    static (X509Certificate2 Certificate, X509Certificate2Collection Chain) LoadServerCertificate(TlsOptions options)
    {
        var path = options.CertificatePath!;
        if (!IsPem(path))
        {
            var all = X509CertificateLoader.LoadPkcs12CollectionFromFile(path, options.CertificatePassword);
            var leaf = all.FirstOrDefault(c => c.HasPrivateKey) ?? all.First();
            var rest = new X509Certificate2Collection();
            foreach (var c in all) if (!ReferenceEquals(c, leaf)) rest.Add(c);
            return (leaf, rest);
        }

        var certificate = string.IsNullOrEmpty(options.CertificatePassword)
            ? X509Certificate2.CreateFromPemFile(path, options.KeyPath)
            : X509Certificate2.CreateFromEncryptedPemFile(path, options.CertificatePassword, options.KeyPath);
        var chain = new X509Certificate2Collection();
        chain.ImportFromPemFile(path);
        var intermediates = new X509Certificate2Collection();
        foreach (var c in chain) if (c.Thumbprint != certificate.Thumbprint) intermediates.Add(c);
        return (certificate, intermediates);
    }

    static bool IsPem(string path)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is ".pfx" or ".p12") return false;
        if (extension is ".pem" or ".crt" or ".cer") return true;
        Span<byte> head = stackalloc byte[64];
        using var stream = File.OpenRead(path);
        var read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return head[..read].IndexOf("-----BEGIN"u8) >= 0;
    }

    /// <summary>Kestrel options for a TLS listener, with client certificates checked against <see cref="ClientRoots"/> when set.</summary>
    public HttpsConnectionAdapterOptions CreateHttpsOptions()
    {
        var https = new HttpsConnectionAdapterOptions
        {
            ServerCertificate = Certificate,
            ServerCertificateChain = Chain,
            SslProtocols = SslProtocols.None, // the OS default: TLS 1.2 and 1.3
            ClientCertificateMode = Options.ClientCertificateMode switch
            {
                TlsClientCertificateMode.Allow => ClientCertificateMode.AllowCertificate,
                TlsClientCertificateMode.Require => ClientCertificateMode.RequireCertificate,
                _ => ClientCertificateMode.NoCertificate,
            },
            CheckCertificateRevocation = false,
        };
        if (ClientRoots is not null) https.ClientCertificateValidation = ValidateClientCertificate;
        return https;
    }

    bool ValidateClientCertificate(X509Certificate2 certificate, X509Chain? _, SslPolicyErrors errors)
    {
        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(ClientRoots!);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }
}
