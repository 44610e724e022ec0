using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using IotRealtime.Broker.Host;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Host;

public sealed class TlsTests : IDisposable
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    readonly TestCertificates _certificates = TestCertificates.Create();

    public void Dispose() => _certificates.Dispose();

    Task<BrokerHost> Start(string mode, params (string, string?)[] extra) =>
        BrokerHost.StartAsync(HostTestConfig.Build(
            Path.Combine(_certificates.Directory, "data"),
            [
                ("Tls:CertificatePath", _certificates.ServerCertificatePath),
                ("Tls:KeyPath", _certificates.ServerKeyPath),
                ("Tls:ClientCaPath", _certificates.CaPath),
                ("Tls:ClientCertificateMode", mode),
                .. extra,
            ]));

    /// <summary>Handshakes and then reads: with TLS 1.3 a server that refuses the client certificate says so only after the client's handshake finished.</summary>
    async Task<SslStream> Handshake(int port, X509Certificate2? clientCertificate)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port).WaitAsync(Timeout);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => _certificates.ValidateServer(certificate, errors),
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            // Sent whatever CA names the server lists, so a refusal is the server's doing, not the client's choice.
            LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
        }).WaitAsync(Timeout);
        return ssl;
    }

    /// <summary>Sends CONNECT over TLS with <paramref name="clientCertificate"/>: true when a CONNACK came back, false when the handshake failed or the connection was closed.</summary>
    async Task<bool> MqttsConnects(int port, X509Certificate2? clientCertificate, string clientId)
    {
        try
        {
            await using var ssl = await Handshake(port, clientCertificate);
            await ssl.WriteAsync(MqttConnect(clientId));
            var connack = new byte[4];
            await ssl.ReadExactlyAsync(connack).AsTask().WaitAsync(Timeout);
            Assert.Equal(new byte[] { 0x20, 2, 0, 0 }, connack);
            return true;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or EndOfStreamException)
        {
            return false;
        }
    }

    /// <summary>A handler for the HTTPS listener that presents <paramref name="clientCertificate"/> whatever CA names the server lists.</summary>
    SocketsHttpHandler HttpsHandler(X509Certificate2? clientCertificate) => new()
    {
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => _certificates.ValidateServer(certificate, errors),
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            LocalCertificateSelectionCallback = clientCertificate is null ? null : (_, _, _, _, _) => clientCertificate,
        },
    };

    HttpClient HttpsClient(X509Certificate2? clientCertificate) => new(HttpsHandler(clientCertificate)) { Timeout = Timeout };

    /// <summary>Opens /mqtt over WSS and sends CONNECT: true when a CONNACK came back, false when the TLS handshake or the upgrade was refused or the socket closed.</summary>
    async Task<bool> WssConnects(int port, X509Certificate2? clientCertificate, string clientId)
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("mqtt");
        using var invoker = new HttpMessageInvoker(HttpsHandler(clientCertificate));
        try
        {
            await socket.ConnectAsync(new Uri($"wss://localhost:{port}/mqtt"), invoker, CancellationToken.None).WaitAsync(Timeout);
            await socket.SendAsync(MqttConnect(clientId), WebSocketMessageType.Binary, true, CancellationToken.None).WaitAsync(Timeout);
            var buffer = new byte[4];
            var received = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(Timeout);
            if (received.MessageType == WebSocketMessageType.Close) return false;
            Assert.Equal(new byte[] { 0x20, 2, 0, 0 }, buffer[..received.Count]);
            return true;
        }
        catch (Exception e) when (e is WebSocketException or AuthenticationException or IOException or HttpRequestException)
        {
            return false;
        }
    }

    static byte[] MqttConnect(string clientId)
    {
        // MQTT 3.1.1 CONNECT, clean session, keep alive 60 s.
        var id = System.Text.Encoding.UTF8.GetBytes(clientId);
        byte[] variable = [0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 4, 2, 0, 60, 0, (byte)id.Length, .. id];
        return [0x10, (byte)variable.Length, .. variable];
    }

    [Fact]
    public async Task Tls_handshake_succeeds_with_a_server_certificate_from_pem_files()
    {
        await using var host = await Start("None");
        Assert.NotNull(host.MqttsPort);
        Assert.NotEqual(host.MqttPort, host.MqttsPort);

        await using var ssl = await Handshake(host.MqttsPort.Value, clientCertificate: null);

        Assert.True(ssl.IsAuthenticated);
        Assert.Equal(_certificates.Server.Thumbprint, new X509Certificate2(ssl.RemoteCertificate!).Thumbprint);
    }

    [Fact]
    public async Task Require_mode_refuses_a_client_without_a_certificate()
    {
        await using var host = await Start("Require");
        var refused = false;
        try
        {
            await using var ssl = await Handshake(host.MqttsPort!.Value, clientCertificate: null);
            await ssl.WriteAsync(MqttConnect("no-cert"));
            var buffer = new byte[16];
            refused = await ssl.ReadAsync(buffer).AsTask().WaitAsync(Timeout) == 0;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            refused = true;
        }
        Assert.True(refused, "a client without a certificate got through");
    }

    [Fact]
    public async Task Require_mode_accepts_a_client_certificate_issued_by_the_client_ca()
    {
        await using var host = await Start("Require");
        await using var ssl = await Handshake(host.MqttsPort!.Value, _certificates.Client);

        await ssl.WriteAsync(MqttConnect("with-cert"));
        var connack = new byte[4];
        await ssl.ReadExactlyAsync(connack).AsTask().WaitAsync(Timeout);

        Assert.True(ssl.IsMutuallyAuthenticated);
        Assert.Equal(new byte[] { 0x20, 2, 0, 0 }, connack);
    }

    [Theory]
    [InlineData("Require")]
    [InlineData("Allow")]
    public async Task A_client_certificate_from_a_foreign_ca_is_refused(string mode)
    {
        await using var host = await Start(mode);
        var port = host.MqttsPort!.Value;

        // Allow: a presented certificate that does not chain to the client CA is refused, not taken as anonymous.
        Assert.False(await MqttsConnects(port, _certificates.ForeignClient, "foreign-cert"), $"{mode}: a certificate from a foreign CA got through");
        Assert.True(await MqttsConnects(port, _certificates.Client, "trusted-cert"), $"{mode}: the trusted certificate was refused");
        Assert.Equal(mode == "Allow", await MqttsConnects(port, clientCertificate: null, "no-cert"));
    }

    [Fact]
    public async Task Require_mode_on_https_refuses_requests_and_wss_without_a_trusted_certificate()
    {
        await using var host = await Start("Require");
        var port = host.HttpsPort!.Value;
        var healthz = new Uri($"https://localhost:{port}/healthz");

        using (var anonymous = HttpsClient(clientCertificate: null))
            await Assert.ThrowsAsync<HttpRequestException>(() => anonymous.GetAsync(healthz));
        using (var foreign = HttpsClient(_certificates.ForeignClient))
            await Assert.ThrowsAsync<HttpRequestException>(() => foreign.GetAsync(healthz));
        using (var trusted = HttpsClient(_certificates.Client))
        {
            using var response = await trusted.GetAsync(healthz);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        }

        Assert.False(await WssConnects(port, clientCertificate: null, "wss-anonymous"), "/mqtt over WSS without a certificate got through");
        Assert.False(await WssConnects(port, _certificates.ForeignClient, "wss-foreign"), "/mqtt over WSS with a foreign certificate got through");
        Assert.True(await WssConnects(port, _certificates.Client, "wss-trusted"), "/mqtt over WSS with the trusted certificate was refused");
    }

    [Fact]
    public async Task Certificate_common_name_is_the_identity_for_acl_rules()
    {
        await using var host = await Start("Require",
            ("Auth:AllowAnonymous", "false"),
            ("Auth:Acl:0", "allow all users/%u/#"),
            ("Auth:Acl:1", "deny all #"));
        using var client = new MqttClientFactory().CreateMqttClient();
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", host.MqttsPort!.Value)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithTimeout(Timeout)
            .WithTlsOptions(o => o
                .UseTls()
                .WithTargetHost("localhost")
                .WithClientCertificates([_certificates.Client])
                .WithCertificateValidationHandler(e => _certificates.ValidateServer(e.Certificate, e.SslPolicyErrors)))
            .Build();

        var result = await client.ConnectAsync(options).WaitAsync(Timeout);
        var own = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"users/{TestCertificates.ClientName}/x")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build()).WaitAsync(Timeout);
        var other = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("users/someone-else/x")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build()).WaitAsync(Timeout);

        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.Equal(MqttClientPublishReasonCode.Success, own.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, other.ReasonCode);
    }

    [Fact]
    public async Task Secure_websocket_is_served_on_the_https_port()
    {
        await using var host = await Start("Allow");
        Assert.NotNull(host.HttpsPort);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("mqtt");
        socket.Options.RemoteCertificateValidationCallback = (_, certificate, _, errors) => _certificates.ValidateServer(certificate, errors);

        await socket.ConnectAsync(new Uri($"wss://localhost:{host.HttpsPort}/mqtt"), CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal("mqtt", socket.SubProtocol);
        await socket.SendAsync(MqttConnect("over-wss"), WebSocketMessageType.Binary, true, CancellationToken.None);
        var buffer = new byte[4];
        var received = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(4, received.Count);
        Assert.Equal(new byte[] { 0x20, 2, 0, 0 }, buffer);
    }

    [Fact]
    public async Task Pfx_certificate_with_password_is_loaded()
    {
        var pfx = Path.Combine(_certificates.Directory, "server.pfx");
        File.WriteAllBytes(pfx, _certificates.Server.Export(X509ContentType.Pfx, "pfx-password"));
        await using var host = await BrokerHost.StartAsync(HostTestConfig.Build(
            Path.Combine(_certificates.Directory, "data"),
            ("Tls:CertificatePath", pfx),
            ("Tls:CertificatePassword", "pfx-password")));

        await using var ssl = await Handshake(host.MqttsPort!.Value, clientCertificate: null);
        Assert.True(ssl.IsAuthenticated);
    }

    [Fact]
    public async Task Certificate_without_its_key_is_a_configuration_error()
    {
        var error = await Assert.ThrowsAsync<IotRealtime.Broker.Host.Configuration.BrokerConfigurationException>(() => BrokerHost.StartAsync(HostTestConfig.Build(
            Path.Combine(_certificates.Directory, "data"),
            ("Tls:CertificatePath", _certificates.ServerCertificatePath),
            ("Tls:ClientCaPath", Path.Combine(_certificates.Directory, "missing-ca.pem")))));

        Assert.Contains(error.Errors, e => e.StartsWith("Tls:ClientCaPath", StringComparison.Ordinal));

        error = await Assert.ThrowsAsync<IotRealtime.Broker.Host.Configuration.BrokerConfigurationException>(() => BrokerHost.StartAsync(HostTestConfig.Build(
            Path.Combine(_certificates.Directory, "data"),
            ("Tls:CertificatePath", _certificates.ServerCertificatePath))));

        Assert.Contains(error.Errors, e => e.StartsWith("Tls:CertificatePath", StringComparison.Ordinal));
    }
}
