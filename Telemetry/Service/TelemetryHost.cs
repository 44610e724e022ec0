using System.Net;
using System.Text;
using IotRealtime.Hosting.Metrics;
using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.History;
using IotRealtime.Telemetry.Ingest;
using IotRealtime.Telemetry.Postgres;
using IotRealtime.Telemetry.Sinks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry;

/// <summary>
/// The telemetry service as an embeddable object: the Kafka consumer that feeds the sinks (PostgreSQL, InfluxDB), and
/// /healthz, /metrics and the history API on one HTTP port. Tests and benchmarks start it in-process on port 0.
/// </summary>
public sealed class TelemetryHost : IAsyncDisposable
{
    readonly WebApplication _app;
    int _disposed;

    TelemetryHost(WebApplication app, TelemetrySettings settings, int httpPort)
    {
        _app = app;
        Settings = settings;
        HttpPort = httpPort;
    }

    public TelemetrySettings Settings { get; }

    /// <summary>The bound HTTP port (/healthz, /metrics, /api/history).</summary>
    public int HttpPort { get; }

    public IServiceProvider Services => _app.Services;

    public TelemetryMetrics Metrics => Services.GetRequiredService<TelemetryMetrics>();

    /// <summary>starting, running, paused, or failed: reason.</summary>
    public string State => Services.GetRequiredService<IngestService>().State;

    /// <summary>Validates <paramref name="configuration"/> (section <c>Telemetry</c>), binds HTTP and starts consuming.</summary>
    /// <exception cref="TelemetryConfigurationException">The configuration is invalid; the message lists each bad key.</exception>
    public static Task<TelemetryHost> StartAsync(IConfiguration configuration, CancellationToken ct = default) =>
        StartAsync(configuration, consoleLifetime: false, ct);

    static async Task<TelemetryHost> StartAsync(IConfiguration configuration, bool consoleLifetime, CancellationToken ct)
    {
        var settings = TelemetrySettings.Load(configuration);

        // An empty builder: configuration comes only from the caller, so an embedded host is not changed by whatever
        // appsettings.json or environment variables the embedding process happens to have.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        if (!consoleLifetime) builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();

        ListenOptions? http = null;
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Parse(settings.Http.BindAddress), settings.Http.Port, o =>
            {
                o.Protocols = HttpProtocols.Http1;
                http = o;
            });
        });
        builder.Services.AddRoutingCore();
        ConfigureServices(builder.Services, settings);

        var app = builder.Build();
        MapEndpoints(app);
        HistoryEndpoints.Map(app);

        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<TelemetryHost>();
        TelemetryLog.Started(logger, http!.IPEndPoint!.ToString(), string.Join(", ", app.Services.GetServices<ITelemetrySink>().Select(s => s.Name)));
        return new TelemetryHost(app, settings, http.IPEndPoint!.Port);
    }

    static void ConfigureServices(IServiceCollection services, TelemetrySettings settings)
    {
        services.AddSingleton(settings);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<TelemetryMetrics>();
        services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<TelemetryMetrics>());
        if (settings.HasSink(TelemetrySettings.PostgresSink))
        {
            services.AddSingleton(sp => new PostgresSink(settings.Postgres, settings.Kafka.GroupId, sp.GetRequiredService<TimeProvider>()));
            services.AddSingleton<ITelemetrySink>(sp => sp.GetRequiredService<PostgresSink>());
            services.AddHostedService<PostgresMaintenanceService>();
        }
        // The history side registers the InfluxDB sink (as ITelemetrySink) and its query services here.
        HistoryEndpoints.AddServices(services, settings);
        services.AddSingleton<IngestService>();
        services.AddHostedService(sp => sp.GetRequiredService<IngestService>());
    }

    static void MapEndpoints(WebApplication app)
    {
        var ingest = app.Services.GetRequiredService<IngestService>();
        app.MapGet("/healthz", context =>
        {
            // Paused is healthy: the service is waiting for a sink, by design. Failed is not.
            var state = ingest.State;
            context.Response.ContentType = "text/plain";
            context.Response.StatusCode = state.StartsWith("failed", StringComparison.Ordinal) ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
            return context.Response.WriteAsync(state);
        });
        app.MapGet("/metrics", static context =>
        {
            var w = new StringBuilder();
            foreach (var source in context.RequestServices.GetServices<IMetricsSource>()) source.WriteMetrics(w);
            context.Response.ContentType = PrometheusText.ContentType;
            return context.Response.WriteAsync(w.ToString());
        });
    }

    /// <summary>Entry point of <c>iotrealtime-telemetry</c>: runs until SIGINT/SIGTERM. Returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length > 0 && args[0] is "-h" or "--help" or "help")
        {
            await Console.Out.WriteLineAsync(TelemetryCommandLine.Usage).ConfigureAwait(false);
            return 0;
        }
        TelemetryHost host;
        try
        {
            host = await StartAsync(TelemetryCommandLine.BuildConfiguration(args), consoleLifetime: true, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TelemetryConfigurationException e)
        {
            await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return 2;
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"Invalid telemetry configuration: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException or Microsoft.AspNetCore.Connections.AddressInUseException)
        {
            await Console.Error.WriteLineAsync($"Cannot listen: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        await using (host.ConfigureAwait(false))
        {
            await host._app.WaitForShutdownAsync().ConfigureAwait(false);
        }
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        TelemetryLog.Stopping(Services.GetRequiredService<ILoggerFactory>().CreateLogger<TelemetryHost>());
        try
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await _app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>An embedded host stops when its owner disposes it, not on Ctrl+C sent to the embedding process.</summary>
    sealed class EmbeddedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
