using System.Net;

namespace IotRealtime.Broker.Host.Listeners;

/// <summary>Where the broker listens, bound from the "Listeners" configuration section. Port 0 picks a free port; -1 disables a listener.</summary>
public sealed class ListenerOptions
{
    public const string Section = "Listeners";

    public string BindAddress { get; set; } = "0.0.0.0";

    /// <summary>MQTT over plain TCP.</summary>
    public int MqttPort { get; set; } = 1883;

    /// <summary>MQTT over TLS; only opened when Tls:CertificatePath is set.</summary>
    public int MqttsPort { get; set; } = 8883;

    /// <summary>HTTP: MQTT over WebSocket at /mqtt, /healthz.</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>HTTPS (MQTT over secure WebSocket at /mqtt); only opened when Tls:CertificatePath is set.</summary>
    public int HttpsPort { get; set; } = 8443;

    /// <summary>Cap on open connections across all listeners; null = the process's open-file limit less a reserve (see <c>OpenFileLimit</c>).</summary>
    public long? MaxConnections { get; set; }

    /// <summary>HTTP/HTTPS: a client must send its whole request line and headers within this many seconds of its first byte (slow-header clients are closed with 408).</summary>
    public int RequestHeadersTimeoutSeconds { get; set; } = 10;

    /// <summary>HTTP/HTTPS: a connection with no request in progress (none sent yet, or between requests) is closed after this many seconds.</summary>
    public int KeepAliveTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// What serves plain MQTT/TCP: <c>Sockets</c> (the default, our lean socket transport: no buffers held by idle
    /// connections) or <c>Kestrel</c> (ASP.NET Core's, as TLS and WebSocket use; a few kilobytes more per connection).
    /// </summary>
    public MqttTcpTransport MqttTransport { get; set; } = MqttTcpTransport.Sockets;

    internal IPAddress ParsedBindAddress => BindAddress switch
    {
        "*" => IPAddress.Any,
        "localhost" => IPAddress.Loopback,
        _ => IPAddress.Parse(BindAddress),
    };

    public IEnumerable<string> Validate(bool tlsEnabled)
    {
        if (BindAddress is not ("*" or "localhost") && !IPAddress.TryParse(BindAddress, out _))
        {
            yield return $"{Section}:BindAddress must be an IP address, '*' or 'localhost' (was '{BindAddress}').";
        }

        foreach (var (key, port) in Ports())
        {
            if (port is < -1 or > 65535) yield return $"{Section}:{key} must be between 0 and 65535, or -1 to disable it (was {port}).";
        }

        var active = Ports().Where(p => p.Port > 0 && (tlsEnabled || p.Key is not (nameof(MqttsPort) or nameof(HttpsPort)))).ToList();
        foreach (var clash in active.GroupBy(p => p.Port).Where(g => g.Count() > 1))
        {
            yield return $"{Section}: {string.Join(" and ", clash.Select(p => $"{Section}:{p.Key}"))} are all set to port {clash.Key}; each listener needs its own port.";
        }

        if (MaxConnections is < 1) yield return $"{Section}:MaxConnections must be at least 1 or unset (was {MaxConnections}).";
        if (RequestHeadersTimeoutSeconds is < 1 or > 3600) yield return $"{Section}:RequestHeadersTimeoutSeconds must be 1..3600 (was {RequestHeadersTimeoutSeconds}).";
        if (KeepAliveTimeoutSeconds is < 1 or > 86_400) yield return $"{Section}:KeepAliveTimeoutSeconds must be 1..86400 (was {KeepAliveTimeoutSeconds}).";
    }

    IEnumerable<(string Key, int Port)> Ports()
    {
        yield return (nameof(MqttPort), MqttPort);
        yield return (nameof(MqttsPort), MqttsPort);
        yield return (nameof(HttpPort), HttpPort);
        yield return (nameof(HttpsPort), HttpsPort);
    }
}

public enum MqttTcpTransport
{
    Sockets,
    Kestrel,
}
