using System.Buffers;
using System.Net.Sockets;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// A packet-level MQTT client for conformance tests: sends exactly the packets (or bytes) a test asks for and hands
/// back every packet the broker sends, so a test can assert on DUP flags, packet ids, reason codes and ordering.
/// </summary>
public sealed class RawMqttClient : IAsyncDisposable
{
    readonly TcpClient _tcp;
    readonly NetworkStream _stream;
    readonly MqttPacketFormatterAdapter _formatter;
    readonly byte[] _buffer = new byte[1 << 20];
    readonly SemaphoreSlim _sendLock = new(1, 1);
    int _start;
    int _end;

    RawMqttClient(TcpClient tcp, MqttProtocolVersion version)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _formatter = new MqttPacketFormatterAdapter(version, new MqttBufferWriter(4096, 65536));
    }

    /// <param name="receiveBuffer">A fixed socket receive buffer (no kernel auto-tuning), for clients that stop reading.</param>
    public static async Task<RawMqttClient> OpenAsync(int port, MqttProtocolVersion version = MqttProtocolVersion.V500, int? receiveBuffer = null)
    {
        var tcp = new TcpClient { NoDelay = true };
        if (receiveBuffer is { } size)
        {
            tcp.ReceiveBufferSize = size;
        }
        await tcp.ConnectAsync("127.0.0.1", port).WaitAsync(TimeSpan.FromSeconds(5));
        return new RawMqttClient(tcp, version);
    }

    /// <summary>Opens a connection and completes CONNECT/CONNACK; throws unless the broker accepted.</summary>
    public static async Task<(RawMqttClient Client, MqttConnAckPacket ConnAck)> ConnectAsync(
        int port, string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500, bool cleanStart = true, Action<MqttConnectPacket>? configure = null,
        int? receiveBuffer = null)
    {
        var client = await OpenAsync(port, version, receiveBuffer);
        var connect = new MqttConnectPacket { ClientId = clientId, CleanSession = cleanStart, KeepAlivePeriod = 60 };
        configure?.Invoke(connect);
        await client.SendAsync(connect);
        var connAck = await client.ReceiveAsync<MqttConnAckPacket>();
        return (client, connAck);
    }

    /// <summary>Safe to call from several tasks at once: packets are encoded and written whole, one at a time.</summary>
    public async Task SendAsync(MqttPacket packet)
    {
        await _sendLock.WaitAsync();
        try
        {
            var buffer = _formatter.Encode(packet);
            var bytes = new byte[buffer.Length];
            buffer.Packet.AsSpan().CopyTo(bytes);
            buffer.Payload.CopyTo(bytes.AsSpan(buffer.Packet.Count));
            _formatter.Cleanup();
            await WriteAsync(bytes);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Writes <paramref name="bytes"/> as they are; a write the broker does not take within <paramref name="timeout"/> (5 s by default) fails.</summary>
    public async Task SendRawAsync(byte[] bytes, TimeSpan? timeout = null)
    {
        await _sendLock.WaitAsync();
        try
        {
            await WriteAsync(bytes, timeout);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    async Task WriteAsync(byte[] bytes, TimeSpan? timeout = null)
    {
        await _stream.WriteAsync(bytes).AsTask().WaitAsync(timeout ?? TimeSpan.FromSeconds(5));
        await _stream.FlushAsync();
    }

    public async Task<T> ReceiveAsync<T>(TimeSpan? timeout = null) where T : MqttPacket
    {
        var packet = await ReceiveAsync(timeout);
        return packet as T ?? throw new Xunit.Sdk.XunitException($"Expected {typeof(T).Name}, got {packet?.GetType().Name ?? "connection closed"}: {packet}");
    }

    /// <summary>The next packet from the broker, or null when the broker closed the connection.</summary>
    public async Task<MqttPacket?> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(5));
        while (true)
        {
            if (TryDecode(out var packet))
            {
                return packet;
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            int read;
            try
            {
                read = await _stream.ReadAsync(_buffer.AsMemory(_end), cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("No packet from the broker within the timeout.");
            }
            catch (IOException)
            {
                return null;
            }
            if (read == 0)
            {
                return null;
            }
            _end += read;
        }
    }

    /// <summary>
    /// Asserts that nothing arrives within <paramref name="window"/>. A quiet period passes on a machine too slow to
    /// send in time: prove absence with a marker instead (ConformanceSteps.ExpectNothingBeforeMarkerAsync).
    /// </summary>
    public async Task ExpectNothingAsync(TimeSpan window)
    {
        try
        {
            var packet = await ReceiveAsync(window);
            if (packet is not null)
            {
                throw new Xunit.Sdk.XunitException($"Expected no packet, got {packet}");
            }
        }
        catch (TimeoutException)
        {
        }
    }

    /// <summary>Waits until the broker closes the connection; returns the DISCONNECT it sent first, if any.</summary>
    public async Task<MqttDisconnectPacket?> ExpectClosedAsync(TimeSpan? timeout = null)
    {
        MqttDisconnectPacket? disconnect = null;
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(5));
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException("The broker did not close the connection.");
            }
            var packet = await ReceiveAsync(left);
            if (packet is null)
            {
                return disconnect;
            }
            if (packet is MqttDisconnectPacket d)
            {
                disconnect = d;
                // as a real client does on DISCONNECT: stop sending, so the broker sees the end of our stream
                _tcp.Client.Shutdown(SocketShutdown.Send);
            }
        }
    }

    bool TryDecode(out MqttPacket? packet)
    {
        packet = null;
        var available = _end - _start;
        if (available < 2)
        {
            return false;
        }
        var length = 0;
        var multiplier = 1;
        var i = 1;
        while (true)
        {
            if (i >= available)
            {
                return false;
            }
            var b = _buffer[_start + i];
            length += (b & 0x7F) * multiplier;
            multiplier *= 128;
            i++;
            if ((b & 0x80) == 0)
            {
                break;
            }
        }
        if (available < i + length)
        {
            return false;
        }
        var header = _buffer[_start];
        var body = new ArraySegment<byte>(_buffer.AsSpan(_start + i, length).ToArray());
        packet = _formatter.Decode(new ReceivedMqttPacket(header, body, i + length));
        _start += i + length;
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        await Task.CompletedTask;
    }
}
