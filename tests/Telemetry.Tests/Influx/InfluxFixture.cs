using IotRealtime.Telemetry.Influx;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Telemetry.Tests.Influx;

/// <summary>One throwaway influxd per test class; each test writes to a database of its own.</summary>
public sealed class InfluxFixture : IAsyncLifetime
{
    InfluxServer? _server;
    int _databases;

    public InfluxServer Server => _server ?? throw new InvalidOperationException("influxd is not started.");

    public async Task InitializeAsync() => _server = await InfluxServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    /// <summary>A database name no other test of this class uses (the sink creates it).</summary>
    public string NewDatabase() => $"t{Interlocked.Increment(ref _databases)}";

    public InfluxSinkOptions Options(string database, Action<InfluxSinkOptions>? configure = null)
    {
        var options = new InfluxSinkOptions { Url = Server.Url.ToString(), Version = 1, Database = database, RetryForMs = 5_000 };
        configure?.Invoke(options);
        return options;
    }

    public async Task<InfluxSink> StartSinkAsync(string database, Action<InfluxSinkOptions>? configure = null, string group = "g1")
    {
        var sink = new InfluxSink(Options(database, configure), group, TimeProvider.System, NullLogger<InfluxSink>.Instance);
        await sink.InitializeAsync(CancellationToken.None);
        return sink;
    }
}
