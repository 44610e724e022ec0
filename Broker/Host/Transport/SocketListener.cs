using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Host.Listeners;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ConnectionInfo = IotRealtime.Broker.Engine.ConnectionInfo;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// The plain MQTT/TCP listener: accepts sockets and hands each to the engine as a pipe over
/// <see cref="SocketPipeReader"/>/<see cref="SocketPipeWriter"/>. It exists beside Kestrel (which serves TLS and HTTP)
/// because a Kestrel connection costs several kilobytes even when idle, and a broker holds tens of thousands of them.
/// It knows nothing of MQTT.
/// </summary>
public sealed class SocketListener(MqttBroker broker, ListenerOptions options, ConnectionLimit limit, TimeProvider time, ILogger<SocketListener> logger) : IHostedService, IAsyncDisposable
{
    // accepts in flight at once: lets a connect storm drain the backlog with both cores
    const int Acceptors = 2;

    // after a failed accept (EMFILE: out of file descriptors) the pending connection is still queued: retrying at once
    // would spin a core; a short pause lets closing connections free descriptors
    static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(50);

    readonly LogThrottle _acceptErrors = new(ConnectionLimit.LogInterval, time);

    readonly CancellationTokenSource _stop = new();
    ReadinessLoop? _readiness;
    readonly List<Task> _acceptors = new();
    Socket? _listener;
    int _connections;
    int _stopped;

    /// <summary>The port actually bound (options may ask for 0); -1 when the listener is disabled.</summary>
    public int Port { get; private set; } = -1;

    public int Connections => Volatile.Read(ref _connections);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.MqttPort < 0)
        {
            return Task.CompletedTask;
        }
        if (!Epoll.IsSupported)
        {
            throw new PlatformNotSupportedException("The plain MQTT/TCP listener needs Linux (epoll); set Listeners:MqttTransport=Kestrel elsewhere.");
        }
        var address = options.ParsedBindAddress;
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (address.Equals(IPAddress.IPv6Any))
        {
            listener.DualMode = true;
        }
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        try
        {
            listener.Bind(new IPEndPoint(address, options.MqttPort));
            listener.Listen(4096);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"Failed to bind to address {address}:{options.MqttPort}: {e.Message}", e);
        }
        _listener = listener;
        _readiness = new ReadinessLoop(logger);
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        for (var i = 0; i < Acceptors; i++)
        {
            _acceptors.Add(AcceptLoopAsync(listener));
        }
        return Task.CompletedTask;
    }

    async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // e.g. EMFILE: out of file descriptors; keep serving the connections we have
                if (_acceptErrors.Count(out var count)) HostLog.AcceptFailed(logger, e.SocketErrorCode.ToString(), count, e);
                try
                {
                    await Task.Delay(AcceptRetryDelay, time, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            if (!limit.TryAcquire("mqtt"))
            {
                // closed at accept, before a byte is read: a flood past the cap costs an accept and a close each
                socket.Dispose();
                continue;
            }
            _ = ServeAsync(socket);
        }
    }

    async Task ServeAsync(Socket socket)
    {
        Interlocked.Increment(ref _connections);
        try
        {
            socket.NoDelay = true;
            var pipe = new SocketDuplexPipe(socket, _readiness!);
            var info = new ConnectionInfo("tcp", socket.RemoteEndPoint, socket.LocalEndPoint, false, null);
            await broker.RunConnectionAsync(pipe, info, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            HostLog.SocketConnectionFailed(logger, e);
        }
        finally
        {
            SocketBuffers.TryShutdown(socket, SocketShutdown.Both);
            socket.Dispose();
            Interlocked.Decrement(ref _connections);
            limit.Release();
            StopReadinessIfIdle();
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // stop accepting; connections are closed by the engine when it is disposed (after draining)
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await Task.WhenAll(_acceptors).ConfigureAwait(false);
        // connections still open are closed by the engine; their readers wait in the loop until then
        _stopLoopWhenIdle = true;
        StopReadinessIfIdle();
    }

    volatile bool _stopLoopWhenIdle;

    void StopReadinessIfIdle()
    {
        if (_stopLoopWhenIdle && Volatile.Read(ref _connections) == 0 && Interlocked.Exchange(ref _readiness, null) is { } loop)
        {
            loop.Dispose();
        }
    }

    // disposed twice when registered both as itself and as a hosted service: only the first counts
    public ValueTask DisposeAsync() => new(StopAsync(CancellationToken.None));

    sealed class SocketDuplexPipe(Socket socket, ReadinessLoop readiness) : IDuplexPipe
    {
        public PipeReader Input { get; } = new SocketPipeReader(socket, readiness);
        public PipeWriter Output { get; } = new SocketPipeWriter(socket);
    }
}
