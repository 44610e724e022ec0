using System.Net;
using IotRealtime.Hosting.Metrics;
using IotRealtime.Hosting.Web;
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
using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry;

/// <summary>
/// The telemetry service as an embeddable object: the Kafka consumer that feeds the sinks (PostgreSQL, InfluxDB), and
/// /healthz, /metrics and the history API on one HTTP port. Tests and benchmarks start it in-process on port 0.
/// </summary>
public sealed class TelemetryHost : EmbeddableHost
{
    TelemetryHost(WebApplication app, TelemetrySettings settings, int httpPort)
        : base(app)
    {
        Settings = settings;
        HttpPort = httpPort;
    }

    public TelemetrySettings Settings { get; }

    /// <summary>The bound HTTP port (/healthz, /metrics, /api/history).</summary>
    public int HttpPort { get; }

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

        var builder = CreateBuilder(configuration, consoleLifetime);
        ListenOptions? http = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Parse(settings.Http.BindAddress), settings.Http.Port, o =>
            {
                o.Protocols = HttpProtocols.Http1;
                http = o;
            });
        });
        ConfigureServices(builder.Services, settings);

        var app = builder.Build();
        MapEndpoints(app);
        HistoryEndpoints.Map(app);

        await StartServingAsync(app, beforeListening: null, ct).ConfigureAwait(false);
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
        MetricsEndpoint.Map(app);
    }

    /// <summary>Entry point of <c>iotrealtime-telemetry</c>: runs until SIGINT/SIGTERM. Returns the exit code.</summary>
    public static Task<int> RunAsync(string[] args) =>
        RunUntilShutdownAsync(args, TelemetryCommandLine.Usage,
            async () => await StartAsync(TelemetryCommandLine.BuildConfiguration(args), consoleLifetime: true, CancellationToken.None).ConfigureAwait(false),
            e => e switch
            {
                TelemetryConfigurationException => e.Message,
                FormatException => $"Invalid telemetry configuration: {e.Message}",
                IOException { InnerException: System.Net.Sockets.SocketException or Microsoft.AspNetCore.Connections.AddressInUseException } => $"Cannot listen: {e.Message}",
                _ => null,
            });

    protected override void OnStopping() => TelemetryLog.Stopping(Services.GetRequiredService<ILoggerFactory>().CreateLogger<TelemetryHost>());
}
