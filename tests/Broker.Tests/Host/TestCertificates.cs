using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace IotRealtime.Broker.Tests.Host;

/// <summary>A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate, written as PEM files to a temp directory; plus a client certificate from a second, foreign CA.</summary>
public sealed class TestCertificates : IDisposable
{
    TestCertificates(string directory, X509Certificate2 ca, X509Certificate2 server, X509Certificate2 client, X509Certificate2 foreignCa, X509Certificate2 foreignClient)
    {
        Directory = directory;
        Ca = ca;
        Server = server;
        Client = client;
        ForeignCa = foreignCa;
        ForeignClient = foreignClient;
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 Server { get; }

    /// <summary>Issued by <see cref="Ca"/> with subject CN <see cref="ClientName"/>; has its private key.</summary>
    public X509Certificate2 Client { get; }

    public const string ClientName = "device-42";

    /// <summary>A CA the broker is never told about.</summary>
    public X509Certificate2 ForeignCa { get; }

    /// <summary>Issued by <see cref="ForeignCa"/> with the same subject as <see cref="Client"/>; has its private key.</summary>
    public X509Certificate2 ForeignClient { get; }

    public string CaPath => Path.Combine(Directory, "ca.pem");

    public string ServerCertificatePath => Path.Combine(Directory, "server.pem");

    public string ServerKeyPath => Path.Combine(Directory, "server.key");

    public static TestCertificates Create()
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("iotrt-tls-").FullName;
        var now = DateTimeOffset.UtcNow;

        var ca = CreateCa("CN=IotRealtime Test CA", now);
        var server = Issue(ca, "CN=localhost", serverAuth: true, now);
        var client = Issue(ca, $"CN={ClientName}, O=IotRealtime Tests", serverAuth: false, now);
        var foreignCa = CreateCa("CN=Foreign Test CA", now);
        var foreignClient = Issue(foreignCa, $"CN={ClientName}, O=IotRealtime Tests", serverAuth: false, now);

        File.WriteAllText(Path.Combine(directory, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server.pem"), server.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "server.key"), server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return new TestCertificates(directory, ca, server, client, foreignCa, foreignClient);
    }

    static X509Certificate2 CreateCa(string subject, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }

    static X509Certificate2 Issue(X509Certificate2 ca, string subject, bool serverAuth, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [serverAuth ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (serverAuth)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var issued = request.Create(ca, now.AddMinutes(-5), now.AddDays(1), serial);
        // Round-trip through PKCS#12 so the key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(issued.CopyWithPrivateKey(key).Export(X509ContentType.Pfx), null);
    }

    /// <summary>Accepts exactly the certificates that chain to <see cref="Ca"/>.</summary>
    public bool ValidateServer(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }

    public void Dispose()
    {
        Ca.Dispose();
        Server.Dispose();
        Client.Dispose();
        ForeignCa.Dispose();
        ForeignClient.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
