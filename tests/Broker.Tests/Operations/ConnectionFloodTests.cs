using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit.Abstractions;

namespace IotRealtime.Broker.Tests.Operations;

/// <summary>
/// A flood of connection attempts past the connection cap, against a broker process holding 50 clients that keep
/// publishing and receiving. Over <c>Listeners:MaxConnections</c> a connection is closed at accept, before a byte is
/// read, on the MQTT socket listener and on Kestrel's (HTTP) alike; over <c>Broker:MaxConnections</c> a CONNECT gets
/// CONNACK 0x89 server busy and the connection closes. Either way the broker stays up, the held clients lose nothing,
/// the log gets a line per interval rather than one per socket, its file descriptors return to where they were, and a
/// client connects once there is room again.
/// </summary>
[Collection(ProcessCollection.Name)]
public sealed class ConnectionFloodTests(ITestOutputHelper output)
{
    const int Cap = 50;
    const int FloodAttempts = 30_000;
    static readonly TimeSpan FloodDuration = TimeSpan.FromSeconds(10);

    // attempts in flight at once, and the source addresses they come from (so ephemeral ports never run short)
    const int FloodConcurrency = 256;
    const int SourceAddresses = 8;

    // each held client publishes about 50 messages a second: steady traffic that leaves the cores to the flood
    static readonly TimeSpan HeldPublishInterval = TimeSpan.FromMilliseconds(20);

    static readonly string BrokerDll = Path.Combine(AppContext.BaseDirectory, "iotrealtime-broker.dll");

    // MQTT 5 CONNECT, clean start, keep alive 60 s, client id "flood"
    static readonly byte[] Connect = [0x10, 0x12, 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x05, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x05, (byte)'f', (byte)'l', (byte)'o', (byte)'o', (byte)'d'];

    enum Outcome
    {
        /// <summary>The server closed the connection without sending a byte.</summary>
        ClosedWithoutReply,
        /// <summary>CONNACK 0x89 server busy, then the server closed the connection.</summary>
        ServerBusy,
        /// <summary>The connection attempt was refused or reset before it was established (the kernel's accept queue was full).</summary>
        Refused,
        /// <summary>Anything else: bytes that are not a refusal, or a connection still open at the deadline.</summary>
        Unexpected,
    }

    /// <summary>How a flood is made: the cap the broker runs with, what each attempt does, how many are open at once.</summary>
    sealed record Flood(string[] BrokerArguments, bool SendConnect, bool HttpToo, int Concurrency, int? OpenFileLimit = null);

    [Fact]
    public async Task A_flood_past_Listeners_MaxConnections_is_closed_at_accept_on_the_mqtt_and_http_listeners()
    {
        await RunAsync(new Flood([$"--Listeners:MaxConnections={Cap}"], SendConnect: false, HttpToo: true, FloodConcurrency));
    }

    [Fact]
    public async Task A_flood_of_connects_past_Broker_MaxConnections_gets_server_busy()
    {
        await RunAsync(new Flood([$"--Broker:MaxConnections={Cap}"], SendConnect: true, HttpToo: false, FloodConcurrency));
    }

    /// <summary>
    /// No Listeners:MaxConnections set, and more silent connections at once than the process may open files (its limit
    /// lowered to 1024 here): the default cap (the limit less a reserve) closes the excess at accept, the connect
    /// timeout closes the silent ones it took, and the process never runs out of descriptors (a .NET process that
    /// does can die with "Out of memory").
    /// </summary>
    [Fact]
    public async Task A_flood_of_silent_connections_past_the_open_file_limit_is_held_below_it()
    {
        await RunAsync(new Flood([$"--Broker:MaxConnections={Cap}", "--Broker:ConnectTimeoutSeconds=2"], SendConnect: false, HttpToo: false, Concurrency: 1500, OpenFileLimit: 1024));
    }

    async Task RunAsync(Flood flood)
    {
        Assert.True(File.Exists(BrokerDll), $"the broker build is missing at {BrokerDll}");
        var dataDirectory = Directory.CreateTempSubdirectory("iotrt-flood-").FullName;
        var mqttPort = FreePort();
        var httpPort = FreePort();
        string[] arguments = [BrokerDll,
            "--Listeners:BindAddress=127.0.0.1", $"--Listeners:MqttPort={mqttPort}", $"--Listeners:HttpPort={httpPort}",
            $"--Data:Directory={dataDirectory}", "--Store:Durability=None", "--Broker:SysInterval=0", "--Broker:PresenceTopics=false",
            "--Bridges:Enabled=false", .. flood.BrokerArguments];
        // exec keeps the process id, so /proc/<pid>/fd is the broker's
        var broker = flood.OpenFileLimit is { } limit
            ? ExternalProcess.Start("/bin/bash", "-c", $"ulimit -n {limit} && exec dotnet {string.Join(' ', arguments)}")
            : ExternalProcess.Start("dotnet", arguments);
        var sendConnect = flood.SendConnect;
        var held = new List<HeldClient>();
        try
        {
            await broker.WaitForLineAsync(l => l.Contains($"Listening for mqtt on 127.0.0.1:{mqttPort}", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "the broker to listen");
            for (var i = 0; i < Cap; i++) held.Add(await HeldClient.ConnectAsync(mqttPort, i));
            using var stopTraffic = new CancellationTokenSource();
            var traffic = held.Select(h => h.PublishUntilAsync(stopTraffic.Token)).ToList();
            await Wait.UntilAsync(() => held.All(h => h.Received > 0), Timeouts.Default, "every held client to receive its own messages");

            var fdBaseline = OpenFiles(broker.Id);
            output.WriteLine($"broker open files with {Cap} clients held: {fdBaseline}");
            var linesBefore = broker.Lines.Count;
            var ports = flood.HttpToo ? new[] { mqttPort, httpPort } : [mqttPort];
            var results = await FloodAsync(ports, sendConnect, flood.Concurrency);
            var linesDuring = broker.Lines.Skip(linesBefore).ToList();

            await stopTraffic.CancelAsync();
            var published = await Task.WhenAll(traffic);
            foreach (var h in held) await h.WaitForAllAsync();
            Assert.False(broker.HasExited, "the broker exited during the flood:\n" + broker.Output);

            var elapsed = results.Max(r => r.EndedAt);
            var byOutcome = results.GroupBy(r => (r.Port, r.Outcome)).OrderBy(g => g.Key.Port).ThenBy(g => g.Key.Outcome).ToList();
            output.WriteLine($"{results.Count} attempts in {elapsed.TotalSeconds:0.0} s = {results.Count / elapsed.TotalSeconds:0} attempts/s from {SourceAddresses} source addresses, {flood.Concurrency} at once");
            foreach (var g in byOutcome)
            {
                var closeTimes = g.Select(r => r.TimeToClose.TotalMilliseconds).Order().ToList();
                output.WriteLine($"  port {(g.Key.Port == mqttPort ? "mqtt" : "http")}: {g.Key.Outcome} x {g.Count()}, connect to close p50 {Percentile(closeTimes, 0.5):0.0} ms, p99 {Percentile(closeTimes, 0.99):0.0} ms, max {closeTimes[^1]:0.0} ms");
            }
            output.WriteLine($"held clients: {published.Sum()} messages published and all received in order meanwhile");
            output.WriteLine($"broker log lines during the flood: {linesDuring.Count}");
            foreach (var line in linesDuring.Take(10)) output.WriteLine("  " + line);

            var expected = sendConnect ? Outcome.ServerBusy : Outcome.ClosedWithoutReply;
            Assert.All(results, r => Assert.True(r.Outcome is Outcome.Refused || r.Outcome == expected, $"attempt {r.Index} on port {r.Port}: {r.Outcome} ({r.Detail})"));
            Assert.True(results.Count(r => r.Outcome == expected) >= Math.Min(results.Count, FloodAttempts / 10), "the attempts reached the broker");
            Assert.True(linesDuring.Count <= 10, $"the flood cost {linesDuring.Count} log lines: " + string.Join('\n', linesDuring.Take(20)));

            // what it held for the flood is given back
            await Wait.UntilAsync(() => OpenFiles(broker.Id) <= fdBaseline, Timeouts.Default, $"the broker's open files to return to {fdBaseline} (now {OpenFiles(broker.Id)})");

            // room again: one held client leaves, a new one connects and is served
            await held[0].DisposeAsync();
            held.RemoveAt(0);
            var (newcomer, tries) = await ConnectOnceThereIsRoomAsync(mqttPort);
            await using (newcomer)
            {
                await newcomer.PublishUntilAsync(new CancellationToken(canceled: true));
                await newcomer.WaitForAllAsync();
            }

            foreach (var h in held) await h.DisposeAsync();
            held.Clear();
            var metrics = await ScrapeAsync(httpPort);
            if (sendConnect)
            {
                Assert.Equal(results.Count(r => r.Outcome == Outcome.ServerBusy) + tries - 1, Metric(metrics, "iotrealtime_connections_refused_total{reason=\"max_connections\"}"));
            }
            else if (flood.HttpToo)
            {
                Assert.Equal(results.Count(r => r.Port == mqttPort && r.Outcome == Outcome.ClosedWithoutReply) + tries - 1, Metric(metrics, "iotrealtime_listener_connections_refused_total{listener=\"mqtt\"}"));
                Assert.Equal(results.Count(r => r.Port == httpPort && r.Outcome == Outcome.ClosedWithoutReply), Metric(metrics, "iotrealtime_listener_connections_refused_total{listener=\"http\"}"));
                Assert.Contains(linesDuring, l => l.Contains("Listeners:MaxConnections (50) reached", StringComparison.Ordinal));
            }
        }
        catch
        {
            output.WriteLine($"broker (exited: {broker.HasExited}) output, last 40 lines:\n" + string.Join('\n', broker.Lines.TakeLast(40)));
            throw;
        }
        finally
        {
            foreach (var h in held) await h.DisposeAsync();
            await broker.DisposeAsync();
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    /// <summary>Connects a new client, trying again while the slot the leaving client gave back is not free yet; returns it and how many tries it took.</summary>
    async Task<(HeldClient Client, int Tries)> ConnectOnceThereIsRoomAsync(int mqttPort)
    {
        var deadline = DateTime.UtcNow + Timeouts.Default;
        for (var tries = 1; ; tries++)
        {
            try
            {
                var client = await HeldClient.ConnectAsync(mqttPort, Cap);
                output.WriteLine($"a new client connected after the flood (attempt {tries})");
                return (client, tries);
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50));
            }
        }
    }

    sealed record Attempt(int Index, int Port, Outcome Outcome, TimeSpan TimeToClose, TimeSpan EndedAt, string Detail);

    /// <summary>Connection attempts spread over <paramref name="ports"/>, bounded by <see cref="FloodAttempts"/> and <see cref="FloodDuration"/>.</summary>
    static async Task<List<Attempt>> FloodAsync(int[] ports, bool sendConnect, int concurrency)
    {
        var results = new ConcurrentBag<Attempt>();
        var clock = Stopwatch.StartNew();
        var next = -1;
        async Task Worker()
        {
            var buffer = new byte[64];
            int index;
            while ((index = Interlocked.Increment(ref next)) < FloodAttempts && clock.Elapsed < FloodDuration)
            {
                var port = ports[index % ports.Length];
                results.Add(await AttemptAsync(index, port, sendConnect, buffer, clock));
            }
        }
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Worker)));
        return [.. results];
    }

    static async Task<Attempt> AttemptAsync(int index, int port, bool sendConnect, byte[] buffer, Stopwatch clock)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(new IPAddress([127, 0, 0, (byte)(2 + index % SourceAddresses)]), 0));
        using var deadline = new CancellationTokenSource(Timeouts.Default);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), deadline.Token);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset)
        {
            return new Attempt(index, port, Outcome.Refused, TimeSpan.Zero, clock.Elapsed, "refused");
        }
        var connectedAt = clock.Elapsed;
        var received = new List<byte>();
        try
        {
            if (sendConnect) await socket.SendAsync(Connect, SocketFlags.None, deadline.Token);
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
                if (n == 0) break;
                received.AddRange(buffer.AsSpan(0, n).ToArray());
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown)
        {
            // a reset is a close too
        }
        catch (OperationCanceledException)
        {
            return new Attempt(index, port, Outcome.Unexpected, clock.Elapsed - connectedAt, clock.Elapsed, $"still open after {Timeouts.Default.TotalSeconds} s, {received.Count} bytes read");
        }
        var closedAfter = clock.Elapsed - connectedAt;
        var outcome = received.Count == 0 ? Outcome.ClosedWithoutReply
            : received.Count >= 4 && received[0] == 0x20 && received[3] == (byte)MqttConnectReasonCode.ServerBusy ? Outcome.ServerBusy
            : Outcome.Unexpected;
        return new Attempt(index, port, outcome, closedAfter, clock.Elapsed, Convert.ToHexString(received.ToArray()));
    }

    /// <summary>A client connected before the flood: publishes QoS 1 to its own topic and checks it receives every message, in order.</summary>
    sealed class HeldClient : IAsyncDisposable
    {
        readonly IMqttClient _client;
        readonly string _topic;
        readonly Lock _gate = new();
        readonly List<int> _received = [];
        int _published;

        HeldClient(IMqttClient client, string topic)
        {
            _client = client;
            _topic = topic;
            client.ApplicationMessageReceivedAsync += e =>
            {
                var seq = int.Parse(Encoding.ASCII.GetString(e.ApplicationMessage.Payload), CultureInfo.InvariantCulture);
                lock (_gate) _received.Add(seq);
                return Task.CompletedTask;
            };
        }

        public int Received
        {
            get
            {
                lock (_gate) return _received.Count;
            }
        }

        public static async Task<HeldClient> ConnectAsync(int port, int index)
        {
            var client = new MqttClientFactory().CreateMqttClient();
            var held = new HeldClient(client, $"held/{index}");
            var options = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId($"held-{index}").WithCleanSession()
                .WithTimeout(TimeSpan.FromSeconds(10)).Build();
            var result = await client.ConnectAsync(options).WaitAsync(Timeouts.Default);
            if (result.ResultCode != MqttClientConnectResultCode.Success)
            {
                client.Dispose();
                throw new MQTTnet.Exceptions.MqttCommunicationException($"held-{index}: CONNACK {result.ResultCode}");
            }
            await client.SubscribeAsync(held._topic, MqttQualityOfServiceLevel.AtLeastOnce).WaitAsync(Timeouts.Default);
            return held;
        }

        /// <summary>Publishes one message, then more until <paramref name="stop"/> (at most 100,000); returns how many.</summary>
        public async Task<int> PublishUntilAsync(CancellationToken stop)
        {
            do
            {
                var payload = Encoding.ASCII.GetBytes(_published.ToString(CultureInfo.InvariantCulture));
                var message = new MqttApplicationMessageBuilder().WithTopic(_topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
                var result = await _client.PublishAsync(message).WaitAsync(Timeouts.Default);
                Assert.True(result.IsSuccess, $"{_topic}: publish {_published} failed: {result.ReasonCode}");
                _published++;
                try
                {
                    await Task.Delay(HeldPublishInterval, stop);
                }
                catch (OperationCanceledException)
                {
                }
            }
            while (!stop.IsCancellationRequested && _published < 100_000);
            return _published;
        }

        public async Task WaitForAllAsync()
        {
            await Wait.UntilAsync(() => Received >= _published, Timeouts.Default, $"{_topic} to receive its {_published} messages");
            lock (_gate) Assert.Equal(Enumerable.Range(0, _published), _received);
        }

        public async ValueTask DisposeAsync()
        {
            if (_client.IsConnected) await _client.DisconnectAsync().WaitAsync(Timeouts.Default);
            _client.Dispose();
        }
    }

    static int OpenFiles(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

    static async Task<string> ScrapeAsync(int httpPort)
    {
        using var http = new HttpClient { Timeout = Timeouts.Default };
        return await http.GetStringAsync($"http://127.0.0.1:{httpPort}/metrics");
    }

    static long Metric(string metrics, string sample)
    {
        var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith(sample + " ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no sample {sample} in /metrics");
        return long.Parse(line[(sample.Length + 1)..], CultureInfo.InvariantCulture);
    }

    static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
