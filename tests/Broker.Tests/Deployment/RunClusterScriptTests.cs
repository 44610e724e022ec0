using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using IotRealtime.Broker.Tests.Infrastructure;
using IotRealtime.Broker.Tests.Interop;

namespace IotRealtime.Broker.Tests.Deployment;

/// <summary>
/// scripts/run-cluster.sh as a person runs it: three broker processes (the build's iotrealtime-broker.dll) that each
/// answer MQTT and /readyz, a publish on node 1 reaching a subscriber on node 3, and SIGTERM to the script stopping
/// every node it started.
/// </summary>
public sealed partial class RunClusterScriptTests : IDisposable
{
    readonly string _dataDir = Directory.CreateTempSubdirectory("iotrt-runcluster-").FullName;

    [GeneratedRegex(@"^node-(?<node>\d): pid (?<pid>\d+), ")]
    private static partial Regex NodeLine();

    [GeneratedRegex(@"^iotrealtime_cluster_remote_routes (?<value>\d+)", RegexOptions.Multiline)]
    private static partial Regex RemoteRoutes();

    [Fact]
    public async Task Three_nodes_start_answer_MQTT_and_readyz_deliver_across_nodes_and_stop_on_SIGTERM()
    {
        var (mqttBase, httpBase, siloBase) = (FreeBase(), FreeBase(), FreeBase());
        var script = ExternalProcess.Start("env",
            $"MQTT_BASE={mqttBase}", $"HTTP_BASE={httpBase}", $"SILO_BASE={siloBase}", $"DATA_DIR={_dataDir}",
            $"BROKER_DLL={Path.Combine(AppContext.BaseDirectory, "iotrealtime-broker.dll")}",
            "bash", Path.Combine(RepositoryRoot(), "scripts", "run-cluster.sh"), "3");
        await using var _ = script;
        try
        {
            await script.WaitForLineAsync(l => l.Contains("3 nodes ready", StringComparison.Ordinal), TimeSpan.FromSeconds(120), "all nodes ready");
            var pids = script.Lines.Select(l => NodeLine().Match(l)).Where(m => m.Success).ToDictionary(m => int.Parse(m.Groups["node"].Value, CultureInfo.InvariantCulture), m => int.Parse(m.Groups["pid"].Value, CultureInfo.InvariantCulture));
            Assert.Equal([1, 2, 3], pids.Keys.Order());

            using var http = new HttpClient { Timeout = Timeouts.Default };
            foreach (var node in pids.Keys)
            {
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{httpBase + node}/readyz")).StatusCode);
                // a QoS 1 publish exits 0 only after the node's PUBACK
                await PubAsync(mqttBase + node, "runcluster/ping", $"ping {node}");
            }

            await using var sub = ExternalProcess.Start(ExternalTools.Require("stdbuf", "coreutils"),
                "-oL", ExternalTools.MosquittoSub, "-h", "127.0.0.1", "-p", (mqttBase + 3).ToString(CultureInfo.InvariantCulture),
                "-i", "runcluster-sub", "-t", "runcluster/cross", "-q", "1", "-C", "1", "-W", "60", "-d", "-F", "MSG %t %q %r %p");
            await MosquittoClients.WaitForSubAckAsync(sub);
            // routes are eventually consistent: wait until node 1 knows node 3's subscription before publishing
            await UntilAsync(async () => RemoteRoutes().Match(await http.GetStringAsync($"http://127.0.0.1:{httpBase + 1}/metrics")) is { Success: true } m
                && int.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture) >= 1, "node 1 to learn node 3's route");
            await PubAsync(mqttBase + 1, "runcluster/cross", "from node 1");
            var message = await MosquittoClients.WaitForMessageAsync(sub);
            Assert.Equal(("runcluster/cross", "from node 1"), (message.Topic, message.Payload));

            await SignalAsync("TERM", script.Id);
            Assert.Equal(143, await script.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("all nodes stopped", script.Output, StringComparison.Ordinal);
            foreach (var (node, pid) in pids)
            {
                Assert.False(Directory.Exists($"/proc/{pid}"), $"node-{node} (PID {pid}) still running after the script stopped");
                Assert.False(CanConnect(mqttBase + node), $"node-{node}'s MQTT port still open after the script stopped");
            }
        }
        finally
        {
            // a failed assertion must not leave the nodes running: SIGTERM lets the script stop them all
            if (!script.HasExited)
            {
                await SignalAsync("TERM", script.Id);
                await script.WaitForExitAsync(TimeSpan.FromSeconds(60));
            }
        }
    }

    static async Task PubAsync(int port, string topic, string payload)
    {
        await using var pub = ExternalProcess.Start(ExternalTools.MosquittoPub, "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture),
            "-t", topic, "-m", payload, "-q", "1");
        var exitCode = await pub.WaitForExitAsync(Timeouts.Default);
        Assert.True(exitCode == 0, $"mosquitto_pub to port {port} exited with {exitCode}:\n{pub.Output}");
    }

    static async Task SignalAsync(string signal, int pid)
    {
        await using var kill = ExternalProcess.Start("kill", $"-{signal}", pid.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(0, await kill.WaitForExitAsync(Timeouts.Default));
    }

    static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while (!await condition())
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"Timed out after {Timeouts.Default.TotalSeconds:0} s waiting for {what}.");
            await Task.Delay(50);
        }
    }

    /// <summary>A base port whose next three ports are free now (the script's node i listens on base + i).</summary>
    static int FreeBase()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var candidate = BrokerProcess.FreePort();
            if (candidate + 3 > 65535) continue;
            if (Enumerable.Range(candidate + 1, 3).All(IsFree)) return candidate;
        }
        throw new InvalidOperationException("no three consecutive free ports found");
    }

    static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    static bool CanConnect(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "IotRealtime.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("IotRealtime.sln not found above " + AppContext.BaseDirectory);
    }

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);
}
