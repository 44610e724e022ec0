using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using IotRealtime.Broker.Host;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Device.Simulator.Scenarios.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>
/// MQTT 5 DISCONNECT 0x9D (server moved) with a Server Reference: a stand-in server accepts each device, then sends it
/// to the real broker; the device reconnects there at once and delivers everything.
/// </summary>
public sealed class FleetRedirectTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-fleet-redirect-").FullName;

    [Fact]
    public async Task A_device_told_server_moved_reconnects_to_the_server_reference()
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"));
        using var mover = new TcpListener(IPAddress.Loopback, 0);
        mover.Start();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var moverLoop = MoveEveryoneAsync(mover, $"127.0.0.1:{host.MqttPort.ToString(CultureInfo.InvariantCulture)}", stop.Token);

        Assert.True(FleetOptions.TryParse(
            ["--port", ((IPEndPoint)mover.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture), "--protocol", "5", "--devices", "3",
             "--connect-rate", "100", "--interval", "0.05", "--jitter", "0", "--messages-per-device", "5", "--reconnect-min", "30",
             "--reconnect-max", "60", "--duration", "20", "--no-progress"],
            out var options, out var error), error);
        var report = await new FleetScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(stop.Token);
        await stop.CancelAsync();
        await moverLoop;

        // A 30 s minimum backoff inside a 20 s run: only an immediate redirect can have delivered the messages.
        Assert.Equal(3, report.Redirects);
        Assert.Equal(3, report.Reconnects);
        Assert.Equal(15, report.Published);
    }

    /// <summary>Accepts connections, answers CONNECT with a v5 CONNACK, then DISCONNECT 0x9D pointing at <paramref name="target"/>.</summary>
    static async Task MoveEveryoneAsync(TcpListener listener, string target, CancellationToken cancellationToken)
    {
        var reference = Encoding.UTF8.GetBytes(target);
        byte[] disconnect = [0xE0, (byte)(2 + 3 + reference.Length), 0x9D, (byte)(3 + reference.Length), 0x1C, 0, (byte)reference.Length, .. reference];
        try
        {
            while (true)
            {
                using var client = await listener.AcceptSocketAsync(cancellationToken);
                var buffer = new byte[1024];
                // One read is enough for a short CONNECT on loopback; its content does not matter here.
                await client.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                await client.SendAsync(new byte[] { 0x20, 0x03, 0x00, 0x00, 0x00 }, SocketFlags.None, cancellationToken);
                await client.SendAsync(disconnect, SocketFlags.None, cancellationToken);
                client.Shutdown(SocketShutdown.Both);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
