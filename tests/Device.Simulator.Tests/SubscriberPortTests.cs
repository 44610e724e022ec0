using System.Globalization;
using System.Net;
using System.Net.Sockets;
using IotRealtime.Device.Simulator.Scenarios.Bench;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>
/// --subscriber-port: the subscribers connect there (another node of a cluster in scripts/bench-cluster.sh), the
/// publishers to --port. Here the second port is a TCP relay to the same in-process broker that counts what it carries.
/// </summary>
public sealed class SubscriberPortTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-subport-").FullName;

    [Fact]
    public async Task Fanin_subscriber_connects_to_the_subscriber_port_and_publishers_to_the_port()
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "None"));
        await using var relay = TcpRelay.Start(host.MqttPort);
        Assert.True(SimulatorOptions.TryParse(
            ["fanin", "--port", Port(host.MqttPort), "--subscriber-port", Port(relay.Port), "--publishers", "5", "--qos", "1",
             "--messages", "1000", "--inflight", "100", "--duration", "60"],
            out var options, out var error), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        var report = await new FanInScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);

        Assert.True(report.Clean);
        Assert.Equal((1000L, 1000L), (report.Published, report.Received));
        // only the subscriber came through the relay: 5 publishers on --port, 1 subscriber on --subscriber-port
        Assert.Equal(1, relay.Accepted);
    }

    [Fact]
    public async Task Latency_subscriber_connects_to_the_subscriber_port()
    {
        await using var host = await InProcessBroker.StartAsync(Path.Combine(_dir, "data"), ("Store:Durability", "None"));
        await using var relay = TcpRelay.Start(host.MqttPort);
        Assert.True(SimulatorOptions.TryParse(
            ["latency", "--port", Port(host.MqttPort), "--subscriber-port", Port(relay.Port), "--publishers", "2", "--qos", "1",
             "--rate", "500", "--messages", "500", "--duration", "60"],
            out var options, out var error), error);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));

        var report = await new BenchScenario(options, TimeProvider.System, TextWriter.Null).RunReportAsync(timeout.Token);

        Assert.True(report.Clean);
        Assert.Equal(1, relay.Accepted);
    }

    [Fact]
    public void Subscriber_port_is_refused_where_there_is_no_subscriber()
    {
        Assert.False(SimulatorOptions.TryParse(["idle", "--subscriber-port", "1884"], out _, out var error));
        Assert.Contains("--subscriber-port", error, StringComparison.Ordinal);
        Assert.False(SimulatorOptions.TryParse(["fanin", "--subscriber-port", "70000"], out _, out var range));
        Assert.Contains("--subscriber-port", range, StringComparison.Ordinal);
    }

    static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Accepts on a loopback port and pipes each connection to the target port, counting connections.</summary>
    sealed class TcpRelay : IAsyncDisposable
    {
        readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        readonly CancellationTokenSource _stop = new();
        readonly List<Task> _pipes = [];
        readonly int _target;
        Task _accept = Task.CompletedTask;
        int _accepted;

        TcpRelay(int target) => _target = target;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Accepted => Volatile.Read(ref _accepted);

        public static TcpRelay Start(int target)
        {
            var relay = new TcpRelay(target);
            relay._listener.Start();
            relay._accept = relay.AcceptLoopAsync();
            return relay;
        }

        async Task AcceptLoopAsync()
        {
            try
            {
                while (true)
                {
                    var inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
                    Interlocked.Increment(ref _accepted);
                    var outbound = new TcpClient();
                    await outbound.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                    lock (_pipes) _pipes.Add(PipeAsync(inbound, outbound));
                }
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
        }

        async Task PipeAsync(TcpClient inbound, TcpClient outbound)
        {
            using (inbound)
            using (outbound)
            {
                var a = inbound.GetStream();
                var b = outbound.GetStream();
                // either side closing ends both directions
                await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _accept;
            Task[] pipes;
            lock (_pipes) pipes = [.. _pipes];
            await Task.WhenAll(pipes.Select(p => p.ContinueWith(_ => { }, TaskScheduler.Default)));
            _stop.Dispose();
        }
    }
}
