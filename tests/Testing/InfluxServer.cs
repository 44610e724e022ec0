using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace IotRealtime.Testing;

/// <summary>
/// A throwaway InfluxDB 1.x (Debian /usr/bin/influxd): a generated config with every directory under a temp
/// directory, HTTP and the RPC service on free loopback ports, no reporting, no UDP/Graphite/collectd/OpenTSDB, no
/// internal monitor database. Ready once GET /ping answers 204; killed by PID and its directory deleted on dispose.
/// </summary>
public sealed class InfluxServer : IAsyncDisposable
{
    public const string Executable = "/usr/bin/influxd";

    readonly Process _process;
    readonly StringBuilder _output;
    readonly string _directory;
    readonly HttpClient _http;

    InfluxServer(Process process, StringBuilder output, string directory, int port)
    {
        _process = process;
        _output = output;
        _directory = directory;
        Port = port;
        Url = new Uri($"http://127.0.0.1:{port}/");
        _http = new HttpClient { BaseAddress = Url, Timeout = Timeouts.Default };
    }

    public int Port { get; }

    /// <summary>http://127.0.0.1:port/</summary>
    public Uri Url { get; }

    /// <summary>What influxd wrote to stdout and stderr so far (for failure messages).</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public static async Task<InfluxServer> StartAsync()
    {
        if (!File.Exists(Executable)) throw new InvalidOperationException($"{Executable} is missing: install the Debian package influxdb (1.x).");
        // A port picked free can be taken before influxd binds it; a start that fails that way is tried again.
        for (var attempt = 1; ; attempt++)
        {
            var directory = Directory.CreateTempSubdirectory("iotrealtime-influx-").FullName;
            var httpPort = FreePort();
            var rpcPort = FreePort();
            File.WriteAllText(Path.Combine(directory, "influxdb.conf"), Config(directory, httpPort, rpcPort));
            var output = new StringBuilder();
            var info = new ProcessStartInfo(Executable)
            {
                ArgumentList = { "run", "-config", Path.Combine(directory, "influxdb.conf") },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = directory,
            };
            var process = new Process { StartInfo = info };
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var server = new InfluxServer(process, output, directory, httpPort);
            try
            {
                await server.WaitReadyAsync();
                return server;
            }
            catch (Exception) when (attempt < 3 && process.HasExited)
            {
                await server.DisposeAsync();
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }
        }
    }

    /// <summary>CREATE DATABASE (idempotent in InfluxDB 1.x).</summary>
    public Task CreateDatabaseAsync(string database) => QueryAsync(null, $"CREATE DATABASE \"{database}\"");

    /// <summary>Runs an InfluxQL statement and returns the JSON answer; throws on an HTTP or statement error.</summary>
    public async Task<JsonDocument> QueryAsync(string? database, string query)
    {
        var form = new Dictionary<string, string> { ["q"] = query };
        if (database is not null) form["db"] = database;
        using var response = await _http.PostAsync("query", new FormUrlEncodedContent(form));
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"InfluxDB answered {(int)response.StatusCode} to '{query}': {body}");
        var document = JsonDocument.Parse(body);
        foreach (var result in document.RootElement.GetProperty("results").EnumerateArray())
        {
            if (result.TryGetProperty("error", out var error)) throw new InvalidOperationException($"InfluxDB refused '{query}': {error.GetString()}");
        }
        return document;
    }

    /// <summary>The rows of the first series of the first statement as column → value maps (empty when there is none).</summary>
    public async Task<IReadOnlyList<Dictionary<string, JsonElement>>> SelectAsync(string database, string query)
    {
        using var document = await QueryAsync(database, query);
        var rows = new List<Dictionary<string, JsonElement>>();
        var result = document.RootElement.GetProperty("results")[0];
        if (!result.TryGetProperty("series", out var series)) return rows;
        foreach (var s in series.EnumerateArray())
        {
            var columns = s.GetProperty("columns").EnumerateArray().Select(c => c.GetString()!).ToArray();
            var tags = s.TryGetProperty("tags", out var t) ? t.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()) : [];
            foreach (var values in s.GetProperty("values").EnumerateArray())
            {
                var row = new Dictionary<string, JsonElement>(tags);
                var i = 0;
                foreach (var v in values.EnumerateArray()) row[columns[i++]] = v.Clone();
                rows.Add(row);
            }
        }
        return rows;
    }

    async Task WaitReadyAsync()
    {
        var deadline = DateTime.UtcNow + Timeouts.Default;
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"influxd exited with code {_process.ExitCode} before it answered /ping:\n{Output}");
            try
            {
                using var response = await _http.GetAsync("ping");
                if (response.StatusCode == HttpStatusCode.NoContent) return;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"influxd did not answer /ping within {Timeouts.Default.TotalSeconds:0} s:\n{Output}");
            await Task.Delay(50);
        }
    }

    static string Config(string directory, int httpPort, int rpcPort) => $"""
        reporting-disabled = true
        bind-address = "127.0.0.1:{rpcPort}"

        [meta]
          dir = "{directory}/meta"
          logging-enabled = false

        [data]
          dir = "{directory}/data"
          wal-dir = "{directory}/wal"
          query-log-enabled = false

        [monitor]
          store-enabled = false

        [http]
          enabled = true
          bind-address = "127.0.0.1:{httpPort}"
          log-enabled = false
          pprof-enabled = false

        [logging]
          level = "warn"
          suppress-logo = true

        [continuous_queries]
          enabled = false

        [subscriber]
          enabled = false

        [[udp]]
          enabled = false

        [[graphite]]
          enabled = false

        [[collectd]]
          enabled = false

        [[opentsdb]]
          enabled = false
        """;

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync().WaitAsync(Timeouts.Default);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // a file still held open; the OS temp cleaner will take it
        }
    }
}
