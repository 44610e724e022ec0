using System.Net;
using System.Net.Sockets;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>Opens one socket and completes the MQTT CONNECT/CONNACK handshake on it, or says why not.</summary>
public sealed class MqttConnector(IPEndPoint broker, TimeSpan timeout)
{
    /// <param name="SessionPresent">The CONNACK's session-present flag (a persistent session the broker still held).</param>
    public readonly record struct Result(Socket? Socket, string? Failure, bool SessionPresent = false);

    public async Task<Result> ConnectAsync(IPEndPoint? source, byte[] connectPacket, CancellationToken cancellationToken)
    {
        var socket = new Socket(broker.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            if (source is not null) SourceBinding.Bind(socket, source);
            await socket.ConnectAsync(broker, deadline.Token).ConfigureAwait(false);
            await socket.SendAsync(connectPacket, SocketFlags.None, deadline.Token).ConfigureAwait(false);

            var connAck = new byte[MqttWire.ConnAckLength];
            var read = 0;
            while (read < connAck.Length)
            {
                var n = await socket.ReceiveAsync(connAck.AsMemory(read), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                if (n == 0) return Fail(socket, "closed before connack");
                read += n;
            }

            var code = MqttWire.ConnAckReturnCode(connAck);
            if (code is null) return Fail(socket, "not a connack");
            if (code != 0) return Fail(socket, MqttWire.ConnAckReason(code.Value));
            return new Result(socket, null, (connAck[2] & 0x01) != 0);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Fail(socket, "timeout");
        }
        catch (OperationCanceledException)
        {
            return Fail(socket, "cancelled");
        }
        catch (SocketException e)
        {
            return Fail(socket, $"socket: {e.SocketErrorCode}");
        }
    }

    static Result Fail(Socket socket, string reason)
    {
        socket.Dispose();
        return new Result(null, reason);
    }
}
