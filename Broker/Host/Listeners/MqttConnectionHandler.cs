using System.Net;
using System.Security.Cryptography.X509Certificates;
using IotRealtime.Broker.Engine;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using ConnectionInfo = IotRealtime.Broker.Engine.ConnectionInfo;

namespace IotRealtime.Broker.Host.Listeners;

/// <summary>Hands every Kestrel connection (TCP, TLS, WebSocket) to the engine as a pipe plus what the transport knows about it.</summary>
public sealed class MqttConnectionHandler(MqttBroker broker, ILogger<MqttConnectionHandler> logger) : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        // WebSocket connections default to text frames; MQTT needs binary.
        var transferFormat = connection.Features.Get<ITransferFormatFeature>();
        if (transferFormat is not null) transferFormat.ActiveFormat = TransferFormat.Binary;

        var info = Describe(connection);
        try
        {
            await broker.RunConnectionAsync(connection.Transport, info, connection.ConnectionClosed).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (connection.ConnectionClosed.IsCancellationRequested)
        {
            // The peer went away; nothing to report.
        }
        catch (Exception e)
        {
            HostLog.ConnectionFailed(logger, connection.ConnectionId, info.Transport, info.RemoteEndPoint, e);
        }
    }

    /// <summary>Transport name, endpoints, whether it is encrypted and the verified client certificate (as MQTTnet's MqttConnectionContext finds them).</summary>
    public static ConnectionInfo Describe(ConnectionContext connection)
    {
        var http = connection.Features.Get<IHttpContextFeature>()?.HttpContext;
        if (http is not null)
        {
            var secure = http.Request.IsHttps;
            return new ConnectionInfo(
                secure ? "wss" : "ws",
                connection.RemoteEndPoint ?? EndPointOf(http.Connection.RemoteIpAddress, http.Connection.RemotePort),
                connection.LocalEndPoint ?? EndPointOf(http.Connection.LocalIpAddress, http.Connection.LocalPort),
                secure,
                http.Connection.ClientCertificate);
        }

        var tls = connection.Features.Get<ITlsConnectionFeature>();
        X509Certificate2? certificate = tls?.ClientCertificate;
        return new ConnectionInfo(tls is null ? "tcp" : "tls", connection.RemoteEndPoint, connection.LocalEndPoint, tls is not null, certificate);
    }

    static IPEndPoint? EndPointOf(IPAddress? address, int port) => address is null ? null : new IPEndPoint(address, port);
}
