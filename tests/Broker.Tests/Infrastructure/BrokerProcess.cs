using System.Net;
using System.Net.Sockets;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// The broker host run as its own process (the build's iotrealtime-broker.dll) on a data directory, so a test can
/// SIGKILL it (<see cref="ExternalProcess.Kill"/>) and start it again on the same files: a crash, not a shutdown.
/// </summary>
public static class BrokerProcess
{
    static readonly string BrokerDll = Path.Combine(AppContext.BaseDirectory, "iotrealtime-broker.dll");

    /// <summary>Starts the broker on 127.0.0.1:<paramref name="mqttPort"/> and waits until it listens; <paramref name="settings"/> are extra "Key=Value" pairs.</summary>
    public static async Task<ExternalProcess> StartAsync(string dataDirectory, int mqttPort, params IEnumerable<string> settings)
    {
        Assert.True(File.Exists(BrokerDll), $"the broker build is missing at {BrokerDll}");
        var arguments = new List<string>
        {
            BrokerDll,
            "--Listeners:BindAddress=127.0.0.1", $"--Listeners:MqttPort={mqttPort}", "--Listeners:HttpPort=0",
            $"--Data:Directory={dataDirectory}", "--Broker:SysInterval=0", "--Broker:PresenceTopics=false",
        };
        arguments.AddRange(settings.Select(s => "--" + s));
        var broker = ExternalProcess.Start("dotnet", arguments);
        try
        {
            await Wait.UntilAsync(() => CanConnect(mqttPort) || broker.HasExited, TimeSpan.FromSeconds(30), $"the broker to listen on port {mqttPort}");
        }
        catch (TimeoutException ex)
        {
            await broker.DisposeAsync();
            throw new TimeoutException(ex.Message + " Output:\n" + broker.Output, ex);
        }
        if (broker.HasExited)
        {
            await broker.DisposeAsync();
            Assert.Fail("the broker exited at start-up:\n" + broker.Output);
        }
        return broker;
    }

    /// <summary>A loopback port free now (the broker process binds it a moment later).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    static bool CanConnect(int port)
    {
        try
        {
            using var probe = new TcpClient();
            probe.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
