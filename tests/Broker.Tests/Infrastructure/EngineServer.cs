using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Host.Transport;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// The engine alone behind a plain loopback TCP listener (no Kestrel): the engine only ever sees a pipe, so these tests
/// exercise exactly what every transport hands it. An exception out of a connection, or one the engine logs at Error
/// (it logs and carries on), fails the test when the server is disposed.
/// </summary>
public sealed class EngineServer : IAsyncDisposable
{
    readonly TcpListener _listener;
    readonly CancellationTokenSource _stop = new();
    readonly List<Task> _connections = new();
    readonly Task _acceptLoop;
    readonly ErrorLog _errors;
    readonly ReadinessLoop _readiness;

    EngineServer(MqttBroker broker, ErrorLog errors, ILoggerFactory loggers)
    {
        Broker = broker;
        _errors = errors;
        _readiness = new ReadinessLoop(loggers.CreateLogger<ReadinessLoop>());
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    public MqttBroker Broker { get; }
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public static EngineServer Start(BrokerOptions? options = null, IMqttAuthorizer? authorizer = null, IPublishStage[]? stages = null,
        IMqttAuthenticator? authenticator = null, IBrokerStore? store = null, IPublishObserver[]? observers = null)
    {
        var errors = new ErrorLog();
        var loggers = new LoggerFactory([errors]);
        var broker = new MqttBroker(
            options ?? new BrokerOptions { SysInterval = 0 },
            authenticator ?? new AllowAllAuthenticator(),
            authorizer ?? new AllowAllAuthorizer(),
            new PublishPipeline(stages ?? [], observers ?? []),
            TimeProvider.System,
            loggers,
            store: store);
        broker.Start();
        return new EngineServer(broker, errors, loggers);
    }

    async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                socket.NoDelay = true;
                lock (_connections)
                {
                    _connections.Add(ServeAsync(socket));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
    }

    async Task ServeAsync(Socket socket)
    {
        // the broker's own socket transport (Listeners:MqttTransport=Sockets, the default) hands the engine these pipes
        var pipe = new SocketDuplexPipe(new SocketPipeReader(socket, _readiness), new SocketPipeWriter(socket));
        var info = new ConnectionInfo("tcp", socket.RemoteEndPoint, socket.LocalEndPoint, false, null);
        try
        {
            await Broker.RunConnectionAsync(pipe, info, _stop.Token);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // the engine promises not to throw (protocol errors close the connection): this is a bug in it
            _errors.Add($"Connection from {info.RemoteEndPoint} threw: {e}");
        }
        finally
        {
            SocketBuffers.TryShutdown(socket, SocketShutdown.Both);
            socket.Dispose();
        }
    }

    sealed class SocketDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _acceptLoop;
        Task[] running;
        lock (_connections)
        {
            running = _connections.ToArray();
        }
        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(10));
        await Broker.DisposeAsync();
        _readiness.Dispose();
        if (_errors.Entries.Count > 0)
        {
            throw new Xunit.Sdk.XunitException($"The engine failed {_errors.Entries.Count} time(s):{Environment.NewLine}{string.Join(Environment.NewLine, _errors.Entries)}");
        }
    }
}
