using System.Buffers;
using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Host.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Broker.Tests.Transport;

/// <summary>
/// The broker's socket pipe reader honours a read's cancellation token (the closing connection's brief drain depends on
/// it: a peer that neither sends nor closes must not hold the connection open), and a cancelled read leaves the
/// reader usable for the next one.
/// </summary>
public sealed class SocketPipeReaderTests
{
    [Fact]
    public async Task A_waiting_read_ends_when_its_token_is_cancelled_and_the_next_read_still_gets_data()
    {
        using var loop = new ReadinessLoop(NullLogger.Instance);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        using var server = await listener.AcceptSocketAsync();
        var reader = new SocketPipeReader(server, loop);
        try
        {
            using var cts = new CancellationTokenSource();
            var read = reader.ReadAsync(cts.Token).AsTask();
            Assert.False(read.IsCompleted); // the peer sent nothing
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(Timeouts.Default));

            await client.SendAsync("ok"u8.ToArray());
            var result = await reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal("ok"u8.ToArray(), result.Buffer.ToArray());
            reader.AdvanceTo(result.Buffer.End);
        }
        finally
        {
            reader.Complete();
        }
    }

    [Fact]
    public async Task An_already_cancelled_token_throws_at_once()
    {
        using var loop = new ReadinessLoop(NullLogger.Instance);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        using var server = await listener.AcceptSocketAsync();
        var reader = new SocketPipeReader(server, loop);
        try
        {
            Assert.Throws<OperationCanceledException>(() => reader.ReadAsync(new CancellationToken(true)));
        }
        finally
        {
            reader.Complete();
        }
    }
}
