using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// Builds the MQTTnet client options of one device: transport (TCP from a given source address, TLS with a custom CA,
/// WebSocket), protocol version, session, keep-alive, will and credentials.
/// </summary>
public sealed class FleetConnectionFactory
{
    readonly FleetOptions _options;
    readonly X509Certificate2Collection? _trusted;
    readonly X509Certificate2Collection? _clientCertificates;

    public FleetConnectionFactory(FleetOptions options)
    {
        _options = options;
        if (options.CaFile is not null)
        {
            _trusted = [];
            _trusted.ImportFromPemFile(options.CaFile);
        }

        if (options.CertFile is not null && options.KeyFile is not null)
            _clientCertificates = [X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile)];
    }

    public MqttClientFactory ClientFactory { get; } = new();

    public string Transport => _options.WebSocketUrl is { } url ? url : _options.UsesTls ? "tls" : "tcp";

    /// <summary>
    /// MQTTnet sets each socket's send and receive buffers to its <c>BufferSize</c>, 8 KB unless told otherwise, which
    /// is right for a device. A client that takes a whole fleet's stream (the verifier) asks for more: on loopback, whose
    /// segments can be 64 KB, a receive window that small lets the sender's segment size outgrow the window once the
    /// subscriber falls behind, and Linux then sends only on its zero-window probe, about 7 KB per 200 ms, so the
    /// subscriber never catches up (docs/benchmarks.md, "fleet1").
    /// </summary>
    public const int StreamBufferBytes = 1 << 20;

    public MqttClientOptions Build(string clientId, IPEndPoint? source, IPEndPoint? redirect, bool cleanStart, int? socketBufferBytes = null)
    {
        var o = _options;
        var builder = ClientFactory.CreateClientOptionsBuilder()
            .WithClientId(clientId)
            .WithProtocolVersion(o.Mqtt5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(o.KeepAliveSeconds))
            .WithTimeout(TimeSpan.FromSeconds(o.ConnectTimeoutSeconds));
        builder = o.Mqtt5 ? builder.WithCleanStart(cleanStart) : builder.WithCleanSession(cleanStart);
        if (o.Mqtt5 && o.PersistentSession) builder = builder.WithSessionExpiryInterval(o.SessionExpirySeconds);
        if (o.Username is not null) builder = builder.WithCredentials(o.Username, o.Password ?? "");
        if (o.WillTopicPattern is not null)
        {
            builder = builder
                .WithWillTopic(string.Format(System.Globalization.CultureInfo.InvariantCulture, o.WillTopicPattern, clientId))
                .WithWillPayload($"{{\"id\":\"{clientId}\",\"online\":false}}")
                .WithWillQualityOfServiceLevel((MqttQualityOfServiceLevel)Math.Min(o.Qos, 1));
        }

        if (o.WebSocketUrl is { } url)
        {
            builder = builder.WithWebSocketServer(ws => ws.WithUri(url));
        }
        else
        {
            EndPoint remote = redirect is not null ? redirect : IPAddress.TryParse(o.Host, out var address) ? new IPEndPoint(address, o.Port) : new DnsEndPoint(o.Host, o.Port);
            builder = builder.WithEndPoint(remote).WithTcpServer(tcp =>
            {
                tcp.NoDelay = true;
                if (socketBufferBytes is { } bytes) tcp.BufferSize = bytes;
                if (source is not null) tcp.LocalEndpoint = source;
            });
        }

        if (o.UsesTls) builder = builder.WithTlsOptions(ConfigureTls);
        return builder.Build();
    }

    void ConfigureTls(MqttClientTlsOptionsBuilder tls)
    {
        tls.UseTls().WithTargetHost(_options.TlsServerName ?? (_options.WebSocketUrl is { } url ? new Uri(url).Host : _options.Host));
        if (_clientCertificates is not null) tls.WithClientCertificates(_clientCertificates);
        if (_trusted is not null) tls.WithCertificateValidationHandler(e => ValidateAgainstCa(e.Certificate, e.SslPolicyErrors, _trusted));
    }

    /// <summary>The broker's certificate must chain to the given CA and match the expected name; system roots are not consulted.</summary>
    public static bool ValidateAgainstCa(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection trusted)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.AddRange(trusted);
        if (certificate is X509Certificate2 leaf) return chain.Build(leaf);
        using var copy = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(copy);
    }
}
