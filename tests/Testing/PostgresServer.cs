using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace IotRealtime.Testing;

/// <summary>
/// A throwaway PostgreSQL 15 cluster for tests: <c>initdb</c> into a temp directory (trust authentication), <c>pg_ctl</c>
/// on a free loopback port with its unix socket inside that directory; stopped and deleted on dispose. Run as root,
/// the server runs as the unprivileged <c>postgres</c> user (PostgreSQL refuses to run as root).
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    const string BinDirectory = "/usr/lib/postgresql/15/bin";
    const string ServerUser = "postgres";

    readonly string _root;
    readonly string _dataDirectory;
    readonly string _socketDirectory;
    readonly bool _durable;
    int _disposed;

    PostgresServer(string root, int port, bool durable)
    {
        _root = root;
        _dataDirectory = Path.Combine(root, "data");
        _socketDirectory = Path.Combine(root, "sock");
        Port = port;
        _durable = durable;
    }

    public int Port { get; }

    public bool IsRunning { get; private set; }

    /// <summary>The postmaster's process id (from postmaster.pid); null while stopped.</summary>
    public int? ServerProcessId
    {
        get
        {
            var pidFile = Path.Combine(_dataDirectory, "postmaster.pid");
            if (!File.Exists(pidFile)) return null;
            using var reader = new StreamReader(new FileStream(pidFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
            return int.TryParse(reader.ReadLine(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
    }

    /// <summary>A connection string for the <c>postgres</c> database as the superuser.</summary>
    public string AdminConnectionString => ConnectionString("postgres");

    /// <summary>Creates and starts a cluster.</summary>
    /// <param name="durable">false (the default, for test speed) turns fsync off.</param>
    public static async Task<PostgresServer> StartAsync(bool durable = false)
    {
        var root = Path.Combine(Path.GetTempPath(), "iotrt-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        var server = new PostgresServer(root, FreePort(), durable);
        try
        {
            Directory.CreateDirectory(server._socketDirectory);
            if (Environment.IsPrivilegedProcess) await RunAsync("chown", ["-R", $"{ServerUser}:{ServerUser}", root], asServer: false).ConfigureAwait(false);
            await RunAsync(Path.Combine(BinDirectory, "initdb"),
                ["-D", server._dataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], asServer: true).ConfigureAwait(false);
            await server.StartAsync().ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts the (stopped) server again on the same port and data directory.</summary>
    public async Task StartAsync()
    {
        var options = $"-p {Port} -k {_socketDirectory} -c listen_addresses=127.0.0.1 -c max_connections=100";
        // fsync off only: a commit still reaches the OS before it returns, so stopping the server (even "immediate")
        // loses nothing; only a machine crash could.
        if (!_durable) options += " -c fsync=off -c full_page_writes=off";
        await RunAsync(Path.Combine(BinDirectory, "pg_ctl"),
            ["start", "-w", "-t", "60", "-D", _dataDirectory, "-l", Path.Combine(_root, "server.log"), "-o", options], asServer: true).ConfigureAwait(false);
        IsRunning = true;
    }

    /// <summary>Stops the server at once (mode immediate: open transactions are cut off, as in a crash).</summary>
    public async Task StopAsync()
    {
        await RunAsync(Path.Combine(BinDirectory, "pg_ctl"), ["stop", "-w", "-m", "immediate", "-D", _dataDirectory], asServer: true).ConfigureAwait(false);
        IsRunning = false;
    }

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Timeout=15;Command Timeout=60";

    /// <summary>Creates database <paramref name="name"/> and returns a connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        await RunAsync(Path.Combine(BinDirectory, "createdb"), ["-h", _socketDirectory, "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", name], asServer: true).ConfigureAwait(false);
        return ConnectionString(name);
    }

    public string ReadLog()
    {
        var log = Path.Combine(_root, "server.log");
        return File.Exists(log) ? File.ReadAllText(log) : string.Empty;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            if (File.Exists(Path.Combine(_dataDirectory, "postmaster.pid")))
            {
                await RunAsync(Path.Combine(BinDirectory, "pg_ctl"), ["stop", "-w", "-m", "immediate", "-D", _dataDirectory], asServer: true).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
            // Already stopped: nothing to stop.
        }
        finally
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                // A file still held open; the temp directory is left to the OS.
            }
        }
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    static async Task RunAsync(string file, IReadOnlyList<string> arguments, bool asServer)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asServer && Environment.IsPrivilegedProcess)
        {
            start.FileName = "runuser";
            foreach (var a in new[] { "-u", ServerUser, "--", file }) start.ArgumentList.Add(a);
        }
        else
        {
            start.FileName = file;
        }
        foreach (var a in arguments) start.ArgumentList.Add(a);
        // pg_ctl start leaves the postmaster running with our pipes inherited: read until the command itself exits.
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Cannot start {file}.");
        var output = new StringBuilder();
        var stdout = DrainAsync(process.StandardOutput, output);
        var stderr = DrainAsync(process.StandardError, output);
        await process.WaitForExitAsync().ConfigureAwait(false);
        await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            string text;
            lock (output) text = output.ToString();
            throw new InvalidOperationException($"{Path.GetFileName(file)} {string.Join(' ', arguments)} exited with {process.ExitCode}: {text}");
        }
    }

    static async Task DrainAsync(StreamReader reader, StringBuilder output)
    {
        string? line;
        while ((line = await reader.ReadLineAsync().ConfigureAwait(false)) is not null)
        {
            lock (output) output.AppendLine(line);
        }
    }
}
