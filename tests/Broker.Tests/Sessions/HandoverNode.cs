using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Broker.Tests.Sessions;

/// <summary>
/// One broker engine on loopback with its own embedded store in its own data directory, as one node of a cluster would
/// have; <see cref="RestartAsync"/> stops it and starts it again on the same directory. The directory goes with it.
/// </summary>
internal sealed class HandoverNode : IAsyncDisposable
{
    readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("iotrt-handover-");
    EngineServer? _server;

    HandoverNode() => _server = Open();

    /// <summary>3.1.1 clients get two deliveries in flight at most, so a test can hold some in the queue.</summary>
    public static BrokerOptions Options => new() { SysInterval = 0, MaxInflightOutbound = 2 };

    public static HandoverNode Start() => new();

    public EngineServer Server => _server ?? throw new InvalidOperationException("The node is stopped.");
    public MqttBroker Broker => Server.Broker;
    public int Port => Server.Port;

    EngineServer Open() => EngineServer.Start(Options, store: EmbeddedBrokerStore.Open(
        new StoreOptions { Directory = _directory.FullName, Durability = DurabilityPolicy.Write }, NullLoggerFactory.Instance));

    /// <summary>Stops the engine, closing its connections and its store; the data directory stays.</summary>
    public async Task StopAsync()
    {
        var server = _server;
        _server = null;
        if (server is not null)
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>Stops the engine and starts it again on the same data directory.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        _server = Open();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            _directory.Delete(recursive: true);
        }
    }
}
