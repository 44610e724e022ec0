using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Security;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// The engine alone behind a plain loopback TCP listener (no Kestrel): the engine only ever sees a pipe, so these tests
/// exercise exactly what every transport hands it.
/// </summary>
public sealed class EngineServer : IAsyncDisposable
{
    readonly TcpListener _listener;
    readonly CancellationTokenSource _stop = new();
    readonly List<Task> _connections = new();
    readonly Task _acceptLoop;

    EngineServer(MqttBroker broker)
    {
        Broker = broker;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    public MqttBroker Broker { get; }
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public static EngineServer Start(BrokerOptions? options = null, IMqttAuthorizer? authorizer = null, IPublishSink[]? sinks = null,
        IMqttAuthenticator? authenticator = null, IBrokerStore? store = null)
    {
        var broker = new MqttBroker(
            options ?? new BrokerOptions { SysInterval = 0 },
            authenticator ?? new AllowAllAuthenticator(),
            authorizer ?? new AllowAllAuthorizer(),
            sinks ?? [],
            TimeProvider.System,
            NullLoggerFactory.Instance,
            store: store);
        broker.Start();
        return new EngineServer(broker);
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
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var pipe = new StreamDuplexPipe(PipeReader.Create(stream), PipeWriter.Create(stream));
        var info = new ConnectionInfo("tcp", socket.RemoteEndPoint, socket.LocalEndPoint, false, null);
        try
        {
            await Broker.RunConnectionAsync(pipe, info, _stop.Token);
        }
        catch (Exception)
        {
            // a test connection failing is reported by the test, not here
        }
    }

    sealed class StreamDuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
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
    }
}
