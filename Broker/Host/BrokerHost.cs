using System.Net;
using System.Runtime.CompilerServices;
using IotRealtime.Broker.Cluster;
using IotRealtime.Bridges;
using IotRealtime.Bridges.Feed;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Host.Auth;
using IotRealtime.Broker.Host.Cli;
using IotRealtime.Broker.Host.Configuration;
using IotRealtime.Broker.Host.Listeners;
using IotRealtime.Broker.Host.Operations;
using IotRealtime.Broker.Host.Transport;
using IotRealtime.Broker.Kafka;
using IotRealtime.Hosting.Metrics;
using IotRealtime.Hosting.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Host;

/// <summary>
/// The broker process as an embeddable object: Kestrel listeners for MQTT over TCP, TLS, WebSocket (/mqtt) and secure
/// WebSocket, /healthz, and the engine behind them. Tests and benchmarks start it in-process on port 0.
/// </summary>
public sealed class BrokerHost : EmbeddableHost
{
    BrokerHost(WebApplication app, HostSettings settings, int mqttPort, int? mqttsPort, int httpPort, int? httpsPort)
        : base(app)
    {
        Settings = settings;
        MqttPort = mqttPort;
        MqttsPort = mqttsPort;
        HttpPort = httpPort;
        HttpsPort = httpsPort;
    }

    /// <summary>The bound MQTT/TCP port; -1 when disabled.</summary>
    public int MqttPort { get; }

    /// <summary>The bound MQTT/TLS port; null when TLS is off or the listener is disabled.</summary>
    public int? MqttsPort { get; }

    /// <summary>The bound HTTP port (WebSocket at /mqtt); -1 when disabled.</summary>
    public int HttpPort { get; }

    /// <summary>The bound HTTPS port (secure WebSocket at /mqtt); null when TLS is off or the listener is disabled.</summary>
    public int? HttpsPort { get; }

    public HostSettings Settings { get; }

    public MqttBroker Broker => Services.GetRequiredService<MqttBroker>();

    /// <summary>Validates <paramref name="configuration"/>, binds the listeners and starts serving.</summary>
    /// <exception cref="BrokerConfigurationException">The configuration is invalid; the message lists each bad key.</exception>
    public static Task<BrokerHost> StartAsync(IConfiguration configuration, CancellationToken ct = default) =>
        StartAsync(configuration, consoleLifetime: false, logging: null, ct);

    /// <summary>As <see cref="StartAsync(IConfiguration, CancellationToken)"/>, with <paramref name="logging"/> also receiving the host's logs (e.g. a test that fails on logged errors).</summary>
    public static Task<BrokerHost> StartAsync(IConfiguration configuration, ILoggerProvider logging, CancellationToken ct = default) =>
        StartAsync(configuration, consoleLifetime: false, logging, ct);

    static async Task<BrokerHost> StartAsync(IConfiguration configuration, bool consoleLifetime, ILoggerProvider? logging, CancellationToken ct)
    {
        var settings = HostSettings.Load(configuration);

        var builder = CreateBuilder(configuration, consoleLifetime, logging);
        ConfigureServices(builder.Services, settings);
        if (settings.Cluster.Enabled) AddCluster(builder, settings.Cluster);

        var listeners = new List<(string Transport, ListenOptions Options)>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Listeners:MaxConnections is enforced by ConnectionLimit over every listener, not Kestrel's own limit
            // (which logs a warning per refused socket); a client must finish its request headers in time, and an idle
            // connection (none sent yet, or between requests) is closed after the keep-alive timeout
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(settings.Listeners.RequestHeadersTimeoutSeconds);
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(settings.Listeners.KeepAliveTimeoutSeconds);
            ConfigureListeners(kestrel, settings, listeners);
        });
        builder.Services.AddConnections();

        var app = builder.Build();
        MapEndpoints(app);

        var broker = app.Services.GetRequiredService<MqttBroker>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<BrokerHost>();
        await StartServingAsync(app, (services, _) =>
        {
            broker.Start();
            services.GetService<KafkaPresenceForwarder>(); // subscribes to presence before the first client connects
            services.GetRequiredService<RuntimeMetrics>(); // its lag probe runs from the start, not from the first scrape
            return Task.CompletedTask;
        }, ct).ConfigureAwait(false);

        if (settings.Cluster.Enabled) LogCluster(app.Services, settings.Cluster);

        int? PortOf(string transport) => transport == "mqtt" && app.Services.GetService<SocketListener>() is { } socketListener
            ? (socketListener.Port >= 0 ? socketListener.Port : null)
            : listeners.Where(l => l.Transport == transport).Select(l => (int?)l.Options.IPEndPoint!.Port).FirstOrDefault();
        foreach (var (transport, options) in listeners) HostLog.Listening(logger, transport, options.IPEndPoint!.ToString());
        if (app.Services.GetService<SocketListener>() is { Port: >= 0 } sockets)
        {
            HostLog.Listening(logger, "mqtt", new IPEndPoint(settings.Listeners.ParsedBindAddress, sockets.Port).ToString());
        }
        HostLog.Started(logger, settings.AclRules.Count, settings.AclDefault.ToString().ToLowerInvariant(), settings.Auth.EffectiveAllowAnonymous,
            settings.Passwords?.Count ?? 0, settings.TlsSetup is not null, settings.DataDirectory);
        if (settings.TlsSetup is { } tls && tls.Certificate.NotAfter.ToUniversalTime() < app.Services.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime.AddDays(14))
        {
            HostLog.CertificateExpiring(logger, tls.Certificate.Subject, tls.Certificate.NotAfter.ToUniversalTime());
        }

        return new BrokerHost(app, settings, PortOf("mqtt") ?? -1, PortOf("mqtts"), PortOf("http") ?? -1, PortOf("https"));
    }

    static void ConfigureServices(IServiceCollection services, HostSettings settings)
    {
        services.AddSingleton(settings);
        services.AddSingleton(settings.Broker);
        services.AddSingleton(settings.Listeners);
        services.AddSingleton(settings.Tls);
        services.AddSingleton(settings.Auth);
        services.AddSingleton(settings.Data);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new RuntimeMetrics(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<RuntimeMetrics>());
        services.AddSingleton<IMqttAuthenticator>(sp => new PasswordAuthenticator(settings.Auth, settings.Passwords, sp.GetRequiredService<ILogger<PasswordAuthenticator>>()));
        services.AddSingleton<IMqttAuthorizer>(settings.AclRules.Count == 0 && settings.AclDefault == AclPermission.Allow
            ? new AllowAllAuthorizer()
            : new AclAuthorizer(settings.AclRules, settings.AclDefault));
        if (settings.Kafka.Enabled)
        {
            services.AddSingleton(sp => new KafkaForwarder(settings.Kafka, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<KafkaForwarder>>()));
            services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<KafkaForwarder>());
            if (!string.IsNullOrEmpty(settings.Kafka.PresenceTopic))
            {
                services.AddSingleton(sp => new KafkaPresenceForwarder(sp.GetRequiredService<MqttBroker>(), sp.GetRequiredService<KafkaForwarder>(),
                    settings.Kafka, sp.GetRequiredService<ILogger<KafkaPresenceForwarder>>()));
                services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<KafkaPresenceForwarder>());
            }
        }
        if (settings.Bridges.Enabled) services.AddBridges(settings.Bridges, brokerAuthOn: !settings.Auth.EffectiveAllowAnonymous || settings.Passwords is not null);
        services.AddSingleton(sp => new MqttBroker(
            sp.GetRequiredService<BrokerOptions>(),
            sp.GetRequiredService<IMqttAuthenticator>(),
            sp.GetRequiredService<IMqttAuthorizer>(),
            // the publish pipeline, in this order: Kafka may refuse or answer late; the bridges' feed, after it, sees only
            // what Kafka accepted
            new PublishPipeline(
                stages: settings.Kafka.Enabled ? [sp.GetRequiredService<KafkaForwarder>()] : [],
                observers: settings.Bridges.Enabled ? [sp.GetRequiredService<FeedObserver>()] : []),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>(),
            store: settings.Store.Durability == DurabilityPolicy.None
                ? null
                : EmbeddedBrokerStore.Open(settings.Store, sp.GetRequiredService<ILoggerFactory>()),
            // registered only when Cluster:Enabled (AddCluster)
            cluster: sp.GetService<IClusterLink>())
        {
            // registered only when Cluster:Enabled: client ids unique cluster-wide, sessions taken over across nodes
            ClusterSessions = sp.GetService<IClusterSessions>(),
        });
        services.AddSingleton<MqttConnectionHandler>();
        services.AddSingleton(sp => new ConnectionLimit(settings.Listeners, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ConnectionLimit>>()));
        services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<ConnectionLimit>());
        if (settings.Listeners.MqttTransport == MqttTcpTransport.Sockets)
        {
            services.AddSingleton<SocketListener>();
            services.AddHostedService(sp => sp.GetRequiredService<SocketListener>());
        }
        OperationsEndpoints.AddOperations(services, settings.Admin);
    }

    // kept out of StartAsync so the JIT loads Orleans only when the cluster is on
    [MethodImpl(MethodImplOptions.NoInlining)]
    static void AddCluster(WebApplicationBuilder builder, BrokerClusterOptions options) => ClusterHosting.AddBrokerCluster(builder, options);

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void LogCluster(IServiceProvider services, BrokerClusterOptions options) => ClusterHosting.LogStarted(services, options);

    static void ConfigureListeners(KestrelServerOptions kestrel, HostSettings settings, List<(string, ListenOptions)> listeners)
    {
        var address = settings.Listeners.ParsedBindAddress;
        var tls = settings.TlsSetup;

        void Listen(string transport, int port, Action<ListenOptions> configure)
        {
            if (port < 0) return;
            kestrel.Listen(address, port, options =>
            {
                options.Use(kestrel.ApplicationServices.GetRequiredService<ConnectionLimit>().Middleware(transport));
                configure(options);
                listeners.Add((transport, options));
            });
        }

        if (settings.Listeners.MqttTransport == MqttTcpTransport.Kestrel)
        {
            Listen("mqtt", settings.Listeners.MqttPort, o => o.UseConnectionHandler<MqttConnectionHandler>());
        }
        Listen("http", settings.Listeners.HttpPort, o => o.Protocols = HttpProtocols.Http1);
        if (tls is not null)
        {
            Listen("mqtts", settings.Listeners.MqttsPort, o => o.UseHttps(tls.CreateHttpsOptions()).UseConnectionHandler<MqttConnectionHandler>());
            // HTTP/2 for SSE (many streams over one connection); MQTT clients' WebSocket upgrade negotiates HTTP/1.1 (ALPN).
            Listen("https", settings.Listeners.HttpsPort, o =>
            {
                o.Protocols = HttpProtocols.Http1AndHttp2;
                o.UseHttps(tls.CreateHttpsOptions());
            });
        }
    }

    static void MapEndpoints(WebApplication app)
    {
        app.MapGet("/healthz", static context =>
        {
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync("ok");
        });
        OperationsEndpoints.MapOperations(app);
        ReplayEndpoints.MapReplay(app);
        if (app.Services.GetService<IClusterLink>() is not null) ClusterEndpoints.MapCluster(app);
        app.MapConnectionHandler<MqttConnectionHandler>("/mqtt", o =>
        {
            o.Transports = HttpTransportType.WebSockets;
            o.WebSockets.SubProtocolSelector = MQTTnet.AspNetCore.MqttSubProtocolSelector.SelectSubProtocol;
        });
        if (app.Services.GetRequiredService<HostSettings>().Bridges.Enabled) app.MapBridges();
    }

    /// <summary>Entry point of the <c>iotrealtime-broker</c> executable: sub-commands, or the broker until SIGINT/SIGTERM. Returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length > 0 && args[0] == PasswdCommand.Name) return await PasswdCommand.RunAsync(args[1..], Console.In, Console.Out, Console.Error).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == ReplayCommand.Name) return await ReplayCommand.RunAsync(args[1..], Console.Out, Console.Error).ConfigureAwait(false);
        return await RunUntilShutdownAsync(args, CommandLine.Usage,
            async () => await StartAsync(CommandLine.BuildConfiguration(args), consoleLifetime: true, logging: null, CancellationToken.None).ConfigureAwait(false),
            e => e switch
            {
                BrokerConfigurationException => e.Message,
                // the membership database cannot be reached or refuses us: the message names Cluster:ConnectionString
                _ when Cluster.Membership.PostgresMembershipException.Find(e) is { } membership => membership.Message,
                // Malformed command line or appsettings.json.
                FormatException => $"Invalid broker configuration: {e.Message}",
                IOException { InnerException: System.Net.Sockets.SocketException or AddressInUseException } => $"Cannot listen: {e.Message}",
                _ => null,
            }).ConfigureAwait(false);
    }

    protected override void OnStopping() => HostLog.Stopping(Services.GetRequiredService<ILoggerFactory>().CreateLogger<BrokerHost>());
}
