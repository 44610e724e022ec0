using System.Buffers;
using System.Net;
using System.Net.Sockets;
using IotRealtime.Device.Simulator.Connections;

namespace IotRealtime.Device.Simulator.Scenarios.Soak;

/// <summary>
/// A raw MQTT 3.1.1 client with a persistent session (clean session 0) that connects again after every loss of its
/// connection (a killed broker, a killed client), with backoff, until stopped. What it does on a fresh connection and
/// with each frame is up to the subclass; replies it returns from <see cref="OnFrame"/> go out in one write per read.
/// </summary>
public abstract class PersistentClient(string clientId, IPEndPoint broker, TimeSpan connectTimeout, SoakCounters counters, TimeProvider time)
{
    /// <summary>Keep-alive in CONNECT; a PINGREQ goes out every half of it, so a quiet client is never timed out.</summary>
    const ushort KeepAliveSeconds = 30;

    static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    readonly SemaphoreSlim _sendLock = new(1, 1);
    Socket? _socket;
    bool _ready;
    bool _connectedBefore;

    public string ClientId => clientId;

    /// <summary>Connected, and done with <see cref="OnConnectedAsync"/>.</summary>
    public bool Ready => Volatile.Read(ref _ready);

    protected SoakCounters Counters => counters;

    protected TimeProvider Time => time;

    /// <summary>Runs on each new connection before anything else is sent on it (resend what is unfinished, subscribe).</summary>
    protected abstract Task OnConnectedAsync(bool sessionPresent, CancellationToken cancellationToken);

    /// <summary>One frame from the broker; acknowledgements to send go into <paramref name="replies"/>.</summary>
    protected abstract void OnFrame(byte header, ReadOnlySpan<byte> body, ArrayBufferWriter<byte> replies);

    /// <summary>Connects, reads, and connects again until <paramref name="stop"/> fires; then disconnects cleanly.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        var connector = new MqttConnector(broker, connectTimeout);
        var backoff = MinBackoff;
        var random = new Random(clientId.GetHashCode(StringComparison.Ordinal));
        while (!stop.IsCancellationRequested)
        {
            counters.ConnectAttempt();
            var result = await connector.ConnectAsync(null, MqttWire.Connect(clientId, KeepAliveSeconds, cleanSession: false), stop).ConfigureAwait(false);
            if (result.Socket is not { } socket)
            {
                if (stop.IsCancellationRequested) break;
                counters.ConnectFailed(result.Failure ?? "unknown");
                await DelayAsync(random.NextDouble() * backoff, stop).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
                continue;
            }

            backoff = MinBackoff;
            if (_connectedBefore)
            {
                counters.Reconnected();
                if (!result.SessionPresent) counters.SessionLost(clientId);
            }

            _connectedBefore = true;
            Volatile.Write(ref _socket, socket);
            using var connection = CancellationTokenSource.CreateLinkedTokenSource(stop);
            var reading = Task.Run(() => ReadLoopAsync(socket, connection.Token), CancellationToken.None);
            var pinging = Task.Run(() => PingLoopAsync(connection.Token), CancellationToken.None);
            try
            {
                await _sendLock.WaitAsync(stop).ConfigureAwait(false);
                try
                {
                    await OnConnectedAsync(result.SessionPresent, stop).ConfigureAwait(false);
                    Volatile.Write(ref _ready, true);
                }
                finally
                {
                    _sendLock.Release();
                }
            }
            catch (OperationCanceledException)
            {
            }

            await reading.ConfigureAwait(false);
            Volatile.Write(ref _ready, false);
            await connection.CancelAsync().ConfigureAwait(false);
            await pinging.ConfigureAwait(false);
            Volatile.Write(ref _socket, null);
            if (stop.IsCancellationRequested)
            {
                MqttWire.SendDisconnectAndClose(socket);
                break;
            }

            socket.Dispose();
            counters.ConnectionLost();
            await DelayAsync(random.NextDouble() * MinBackoff, stop).ConfigureAwait(false);
        }
    }

    /// <summary>Drops the connection as a crashed client does: no DISCONNECT, a reset instead of a close.</summary>
    public bool Kill()
    {
        var socket = Volatile.Read(ref _socket);
        if (socket is null) return false;
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        catch (ObjectDisposedException)
        {
        }

        return true;
    }

    /// <summary>Sends on the current connection while the caller holds the send lock (see <see cref="SendAsync"/>).</summary>
    protected async Task<bool> SendLockedAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        var socket = Volatile.Read(ref _socket);
        if (socket is null) return false;
        try
        {
            await socket.SendAsync(frame, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The read loop sees the broken connection and the session loop connects again.
            CloseQuietly(socket);
            return false;
        }
    }

    /// <summary>Sends a frame, in order with every other frame of this client; false when not connected.</summary>
    protected async Task<bool> SendAsync(ReadOnlyMemory<byte> frame, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SendLockedAsync(frame, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Runs <paramref name="action"/> with the send lock held, so nothing else is written meanwhile.</summary>
    protected async Task<T> WithSendLockAsync<T>(Func<Task<T>> action, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    async Task ReadLoopAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[256 * 1024];
        var replies = new ArrayBufferWriter<byte>(4096);
        var filled = 0;
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0) return;
                filled += n;
                var at = 0;
                while (MqttWire.TryReadFrame(buffer.AsSpan(at, filled - at), out var header, out var bodyOffset, out var bodyLength, out _))
                {
                    OnFrame(header, buffer.AsSpan(at + bodyOffset, bodyLength), replies);
                    at += bodyOffset + bodyLength;
                }

                if (MqttWire.TryReadFrame(buffer.AsSpan(at, filled - at), out _, out var pendingOffset, out var pendingLength, out var malformed) is false
                    && (malformed || (at == 0 && pendingOffset > 0 && pendingOffset + pendingLength > buffer.Length)))
                {
                    counters.Failure($"{clientId}: malformed or oversized frame from the broker");
                    return;
                }

                buffer.AsSpan(at, filled - at).CopyTo(buffer);
                filled -= at;
                if (replies.WrittenCount > 0)
                {
                    var frame = replies.WrittenMemory.ToArray();
                    replies.ResetWrittenCount();
                    if (!await SendAsync(frame, cancellationToken).ConfigureAwait(false)) return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            // On a clean stop the session loop still sends DISCONNECT on this socket.
            if (!cancellationToken.IsCancellationRequested) CloseQuietly(socket);
        }
    }

    async Task PingLoopAsync(CancellationToken cancellationToken)
    {
        var ping = MqttWire.PingReq.ToArray();
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(KeepAliveSeconds / 2.0), time, cancellationToken).ConfigureAwait(false);
                if (!await SendAsync(ping, cancellationToken).ConfigureAwait(false)) return;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Shuts the socket down so that a pending receive returns; the session loop disposes it.</summary>
    static void CloseQuietly(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    async Task DelayAsync(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, time, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
