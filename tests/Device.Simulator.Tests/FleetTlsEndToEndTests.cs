using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using IotRealtime.Broker.Host;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Scenarios.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The fleet over MQTT/TLS against the in-process broker, trusting only a CA made for the test.</summary>
public sealed class FleetTlsEndToEndTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-fleet-tls-").FullName;

    /// <summary>Writes a CA and a server certificate for 127.0.0.1 signed by it; returns the CA's PEM path.</summary>
    string WriteCertificates(string name, out string serverCert, out string serverKey)
    {
        // one clock reading for both: a server certificate may not outlive its CA, not even by the milliseconds in between
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN={name} test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var server = request.Create(ca, now.AddDays(-1), now.AddDays(29), [1, 2, 3, 4]);

        var caPath = Path.Combine(_dir, $"{name}-ca.pem");
        serverCert = Path.Combine(_dir, $"{name}-server.pem");
        serverKey = Path.Combine(_dir, $"{name}-server.key");
        File.WriteAllText(caPath, ca.ExportCertificatePem());
        File.WriteAllText(serverCert, server.ExportCertificatePem());
        File.WriteAllText(serverKey, key.ExportPkcs8PrivateKeyPem());
        return caPath;
    }

    Task<BrokerHost> StartBrokerAsync(string cert, string key) => InProcessBroker.StartAsync(Path.Combine(_dir, "data"),
        ("Listeners:MqttsPort", "0"), ("Listeners:HttpsPort", "0"), ("Tls:CertificatePath", cert), ("Tls:KeyPath", key));

    static async Task<FleetReport> RunAsync(params string[] args)
    {
        Assert.True(FleetOptions.TryParse(args, out var options, out var error), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        return await new FleetScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);
    }

    [Fact]
    public async Task Devices_connect_over_tls_when_the_broker_chains_to_the_given_ca()
    {
        var ca = WriteCertificates("good", out var cert, out var key);
        await using var host = await StartBrokerAsync(cert, key);

        var report = await RunAsync("--tls", "--ca-file", ca, "--port", host.MqttsPort!.Value.ToString(CultureInfo.InvariantCulture),
            "--devices", "10", "--connect-rate", "100", "--interval", "0.05", "--jitter", "0", "--qos", "1", "--messages-per-device", "5",
            "--duration", "60", "--verify", "--protocol", "5", "--no-progress");

        Assert.Equal(10, report.Connected);
        Assert.Equal("tls", report.Transport);
        Assert.Equal(50, report.Received);
        Assert.True(report.Clean);
    }

    [Fact]
    public async Task Devices_connect_over_secure_websocket_with_the_given_ca()
    {
        var ca = WriteCertificates("wss", out var cert, out var key);
        await using var host = await StartBrokerAsync(cert, key);

        var report = await RunAsync("--ws", $"wss://127.0.0.1:{host.HttpsPort!.Value.ToString(CultureInfo.InvariantCulture)}/mqtt", "--ca-file", ca,
            "--devices", "5", "--connect-rate", "100", "--interval", "0.05", "--jitter", "0", "--qos", "1", "--messages-per-device", "4",
            "--duration", "60", "--verify", "--no-progress");

        Assert.True(report.Failures.Count == 0, string.Join("; ", report.Failures.Select(f => $"{f.Key} x{f.Value}")));
        Assert.Equal(5, report.Connected);
        Assert.Equal(20, report.Received);
        Assert.True(report.Clean);
    }

    [Fact]
    public async Task Devices_refuse_a_broker_certificate_from_another_ca()
    {
        WriteCertificates("server", out var cert, out var key);
        var otherCa = WriteCertificates("other", out _, out _);
        await using var host = await StartBrokerAsync(cert, key);

        // Bounded by --duration: no device ever connects, each retries with backoff until the run ends.
        var report = await RunAsync("--tls", "--ca-file", otherCa, "--port", host.MqttsPort!.Value.ToString(CultureInfo.InvariantCulture),
            "--devices", "3", "--connect-rate", "100", "--reconnect-min", "0.2", "--reconnect-max", "0.5", "--duration", "1.5", "--no-progress");

        Assert.Equal(0, report.Connected);
        Assert.True(report.ConnectFailures >= 3);
        Assert.False(report.Clean);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
