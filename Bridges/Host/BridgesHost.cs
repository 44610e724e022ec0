using System.Net;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Fleet;
using IotRealtime.Bridges.Operations;
using IotRealtime.Bridges.Remote;
using IotRealtime.Hosting.Configuration;
using IotRealtime.Hosting.Metrics;
using IotRealtime.Hosting.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Bridges.Host;

/// <summary>Where the standalone bridges listen ("Listeners" section).</summary>
public sealed class BridgesListenerOptions
{
    public const string Section = "Listeners";

    public string BindAddress { get; set; } = "0.0.0.0";

    /// <summary>HTTP port for /sse, /ws, /api and the dashboard (0 = any free port).</summary>
    public int HttpPort { get; set; } = 8090;

    public int MaxConnections { get; set; } = 19_000;

    /// <summary>A client must send its whole request line and headers within this many seconds of its first byte (slow-header clients are closed with 408).</summary>
    public int RequestHeadersTimeoutSeconds { get; set; } = 10;

    /// <summary>A connection with no request in progress (none sent yet, or between requests) is closed after this many seconds.</summary>
    public int KeepAliveTimeoutSeconds { get; set; } = 30;
}

/// <summary>
/// <c>iotrealtime-bridges</c> as an embeddable object: the bridges in their own process, fed by an MQTT connection to a
/// remote broker (positions of this process's own epoch). Tests start it in-process on port 0.
/// </summary>
public sealed class BridgesHost : EmbeddableHost
{
    BridgesHost(WebApplication app, int httpPort)
        : base(app)
    {
        HttpPort = httpPort;
    }

    public int HttpPort { get; }

    public RemoteBrokerLink Upstream => Services.GetRequiredService<RemoteBrokerLink>();

    public FeedHub Feed => Services.GetRequiredService<FeedHub>();

    /// <summary>Validates the configuration, connects upstream (waiting until the broker answers) and starts serving.</summary>
    /// <exception cref="ArgumentException">Invalid configuration; the message names every bad key.</exception>
    public static Task<BridgesHost> StartAsync(IConfiguration configuration, CancellationToken ct = default) => StartAsync(configuration, consoleLifetime: false, ct);

    static async Task<BridgesHost> StartAsync(IConfiguration configuration, bool consoleLifetime, CancellationToken ct)
    {
        var errors = new List<string>();
        var bridges = BridgesOptions.Load(configuration, errors);
        var upstream = StrictBinder.Bind<UpstreamOptions>(configuration, UpstreamOptions.Section, errors);
        errors.AddRange(upstream.Validate());
        var listeners = StrictBinder.Bind<BridgesListenerOptions>(configuration, BridgesListenerOptions.Section, errors);
        if (!IPAddress.TryParse(listeners.BindAddress, out var address)) errors.Add($"{BridgesListenerOptions.Section}:BindAddress: '{listeners.BindAddress}' is not an IP address.");
        if (listeners.HttpPort is < 0 or > 65535) errors.Add($"{BridgesListenerOptions.Section}:HttpPort must be 0..65535 (was {listeners.HttpPort}).");
        if (listeners.RequestHeadersTimeoutSeconds is < 1 or > 3600) errors.Add($"{BridgesListenerOptions.Section}:RequestHeadersTimeoutSeconds must be 1..3600 (was {listeners.RequestHeadersTimeoutSeconds}).");
        if (listeners.KeepAliveTimeoutSeconds is < 1 or > 86_400) errors.Add($"{BridgesListenerOptions.Section}:KeepAliveTimeoutSeconds must be 1..86400 (was {listeners.KeepAliveTimeoutSeconds}).");
        // this process exists for the bridges: recording while nobody listens costs the broker nothing
        if (configuration[$"{BridgesOptions.Section}:History:Record"] is null) bridges.History.Record = HistoryRecording.Always;
        if (errors.Count > 0) throw new ArgumentException("Invalid bridges configuration:\n  " + string.Join("\n  ", errors), nameof(configuration));

        var builder = CreateBuilder(configuration, consoleLifetime);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(upstream);
        var kafkaHistory = bridges.History.Kafka;
        builder.Services.AddSingleton(sp => new RemoteBrokerLink(upstream, sp.GetRequiredService<FeedHub>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<RemoteBrokerLink>>(),
            feedFromMqtt: !kafkaHistory.Enabled));
        if (kafkaHistory.Enabled)
        {
            // the live feed and the history streams resume from come from the Kafka topics the broker forwards to (docs/bridges.md)
            var replayer = new Broker.Kafka.KafkaReplayer(kafkaHistory.BootstrapServers!);
            builder.Services.AddSingleton(replayer);
            builder.Services.AddSingleton(new KafkaHistory(replayer, kafkaHistory.Topics));
            // SSE and the WebSocket resume from it: the live feed's newest messages in memory, Kafka behind them
            builder.Services.AddSingleton(sp => new KafkaFrontHistory(sp.GetRequiredService<KafkaHistory>(), sp.GetRequiredService<FeedHub>(), bridges.History.MaxBytes));
            builder.Services.AddSingleton<IHistorySource>(sp => sp.GetRequiredService<KafkaFrontHistory>());
            builder.Services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<KafkaFrontHistory>());
            builder.Services.AddSingleton(sp => new KafkaLiveFeed(replayer, sp.GetRequiredService<KafkaHistory>(), sp.GetRequiredService<KafkaFrontHistory>(), sp.GetRequiredService<ILogger<KafkaLiveFeed>>()));
        }
        builder.Services.AddSingleton<IBrokerLink>(sp => sp.GetRequiredService<RemoteBrokerLink>());
        builder.Services.AddBridgesCore(bridges, requireToken: bridges.RequireToken ?? false);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxConcurrentConnections = listeners.MaxConnections;
            kestrel.Limits.MaxConcurrentUpgradedConnections = listeners.MaxConnections;
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(listeners.RequestHeadersTimeoutSeconds);
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(listeners.KeepAliveTimeoutSeconds);
            kestrel.Listen(address!, listeners.HttpPort, o => o.Protocols = HttpProtocols.Http1);
        });

        var app = builder.Build();
        app.MapBridges();
        app.MapGet("/healthz", static context => context.Response.WriteAsync("ok"));
        app.MapGet("/readyz", context =>
        {
            var link = context.RequestServices.GetRequiredService<RemoteBrokerLink>();
            context.Response.StatusCode = link.IsConnected && !link.IsDraining ? 200 : 503;
            return context.Response.WriteAsync(link.IsConnected ? link.IsDraining ? "not ready: draining" : "ready" : "not ready: broker not connected");
        });
        MetricsEndpoint.Map(app);
        app.MapPost("/api/drain", context =>
        {
            // no admin token here: only loopback callers (the orchestrator's local agent) may drain
            if (context.Connection.RemoteIpAddress is not { } ip || !IPAddress.IsLoopback(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip))
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return Task.CompletedTask;
            }
            var link = context.RequestServices.GetRequiredService<RemoteBrokerLink>();
            var window = TimeSpan.FromSeconds(double.TryParse(context.Request.Query["windowSeconds"], System.Globalization.CultureInfo.InvariantCulture, out var s) ? Math.Clamp(s, 0, 3600) : 30);
            link.DrainWindow = window;
            link.IsDraining = true;
            context.RequestServices.GetRequiredService<StreamRegistry>().Drain(window);
            context.Response.StatusCode = StatusCodes.Status202Accepted;
            return Task.CompletedTask;
        });

        await StartServingAsync(app, async (services, token) =>
        {
            if (services.GetService<KafkaLiveFeed>() is { } live) await live.StartAsync(token).ConfigureAwait(false);
            await services.GetRequiredService<RemoteBrokerLink>().StartAsync(token).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        var server = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>();
        var port = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses
            .Select(a => new Uri(a.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)).Port).FirstOrDefault() ?? listeners.HttpPort;
        return new BridgesHost(app, port);
    }

    /// <summary>Entry point of <c>iotrealtime-bridges</c>: serves until SIGINT/SIGTERM. Returns the exit code.</summary>
    public static Task<int> RunAsync(string[] args) =>
        RunUntilShutdownAsync(args, Usage,
            async () => await StartAsync(BuildConfiguration(args), consoleLifetime: true, CancellationToken.None).ConfigureAwait(false),
            e => e switch
            {
                ArgumentException => e.Message,
                MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or IOException or Confluent.Kafka.KafkaException => $"Cannot start: {e.Message}",
                _ => null,
            });

    static IConfiguration BuildConfiguration(string[] args) =>
        new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables("IOTRT_")
            .AddCommandLine(args)
            .Build();

    const string Usage = """
        iotrealtime-bridges: SSE (/sse), multiplexed WebSocket (/ws) and the dashboard for a remote IotRealtime broker.
        Settings (appsettings.json, IOTRT_ environment variables (as the broker) with __ for ':', or --Key=value):
          --Upstream:Host=127.0.0.1 --Upstream:Port=1883 [--Upstream:Username=u --Upstream:Password=p] [--Upstream:Filters:0=#]
          --Listeners:HttpPort=8090 --Listeners:BindAddress=0.0.0.0
          [--Bridges:History:Kafka:BootstrapServers=kafka:9092 --Bridges:History:Kafka:Topics:0=mqtt]   (SSE and WebSocket resume from Kafka)
          --Bridges:... (see docs/bridges.md)
        """;
}
