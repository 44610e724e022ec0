using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IotRealtime.Bridges.Tests.Infrastructure;

namespace IotRealtime.Bridges.Tests.Sse;

public sealed class SseOverTlsTests : IDisposable
{
    readonly string _directory = Directory.CreateTempSubdirectory("iotrt-bridges-tls-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Sse_over_tls_negotiates_http2()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certPath = Path.Combine(_directory, "server.pem");
        var keyPath = Path.Combine(_directory, "server.key");
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());

        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?>
        {
            ["Tls:CertificatePath"] = certPath,
            ["Tls:KeyPath"] = keyPath,
            ["Listeners:MqttsPort"] = "0",
            ["Listeners:HttpsPort"] = "0",
        });
        var thumbprint = certificate.GetCertHashString();
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == thumbprint,
            },
        };
        using var client = new HttpClient(handler)
        {
            BaseAddress = new Uri($"https://127.0.0.1:{bridges.Host.HttpsPort}/"),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        await using var sse = await SseReader.OpenAsync(client, "sse?topic=secure/%23", version: HttpVersion.Version20);
        Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
        Assert.Equal(HttpVersion.Version20, sse.Response.Version);
        await sse.ReadAsync();
        var mqtt = await bridges.ConnectMqttAsync();
        await TestBridges.PublishAsync(mqtt, "secure/1", "over h2");
        Assert.Equal("over h2", (await sse.NextAsync()).Json.GetProperty("payload").GetString());

        // MQTT over secure WebSocket still upgrades on the same listener (HTTP/1.1 by ALPN)
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        ws.Options.AddSubProtocol("mqtt");
        ws.Options.RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == thumbprint;
        await ws.ConnectAsync(new Uri($"wss://127.0.0.1:{bridges.Host.HttpsPort}/mqtt"), CancellationToken.None).WaitAsync(Timeouts.Default);
        Assert.Equal(System.Net.WebSockets.WebSocketState.Open, ws.State);
    }
}
