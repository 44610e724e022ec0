using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Security;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine;

/// <summary>The MQTT engine: sessions, routing, retained messages, wills. Transports hand it one pipe per connection.</summary>
public sealed partial class MqttBroker : IAsyncDisposable
{
    public MqttBroker(
        BrokerOptions options,
        IMqttAuthenticator authenticator,
        IMqttAuthorizer authorizer,
        IEnumerable<IPublishSink> sinks,
        TimeProvider timeProvider,
        ILoggerFactory loggerFactory)
    {
        throw new NotImplementedException();
    }

    /// <summary>Serves one MQTT connection until it closes. Never throws for protocol errors; they close the connection.</summary>
    public Task RunConnectionAsync(IDuplexPipe transport, ConnectionInfo connection, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <summary>Starts housekeeping (keep-alive sweep, will delay, session expiry, $SYS topics).</summary>
    public void Start() => throw new NotImplementedException();

    public int ConnectedClients => throw new NotImplementedException();

    public ValueTask DisposeAsync() => throw new NotImplementedException();
}
