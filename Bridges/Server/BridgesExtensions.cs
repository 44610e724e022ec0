using IotRealtime.Bridges.Auth;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Fleet;
using IotRealtime.Bridges.Operations;
using IotRealtime.Bridges.Sse;
using IotRealtime.Bridges.WebSockets;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Hosting.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Bridges;

/// <summary>Wiring: <c>services.AddBridges(configuration)</c> and <c>app.MapBridges()</c>.</summary>
public static class BridgesExtensions
{
    /// <summary>
    /// The bridges inside the broker process: the feed is a <see cref="FeedObserver"/>, which the host puts into the
    /// broker's publish pipeline after every stage, and publishing, presence and fleet come from the engine. Tokens are required when the
    /// broker's authentication is on (Auth:AllowAnonymous=false or Auth:PasswordFile set) unless Bridges:RequireToken says otherwise.
    /// </summary>
    /// <exception cref="ArgumentException">The Bridges section is invalid; the message names each bad key.</exception>
    public static IServiceCollection AddBridges(this IServiceCollection services, IConfiguration configuration)
    {
        var errors = new List<string>();
        var options = BridgesOptions.Load(configuration, errors);
        if (errors.Count > 0) throw new ArgumentException("Invalid bridges configuration: " + string.Join(" ", errors), nameof(configuration));
        return services.AddBridges(options, BrokerAuthOn(configuration));
    }

    /// <summary>As <see cref="AddBridges(IServiceCollection, IConfiguration)"/> with options already bound and validated.</summary>
    public static IServiceCollection AddBridges(this IServiceCollection services, BridgesOptions options, bool brokerAuthOn)
    {
        if (options.History.Kafka.Enabled)
        {
            throw new ArgumentException($"{BridgesOptions.Section}:History:Kafka is only supported by the standalone bridges (iotrealtime-bridges); remove it here.", nameof(options));
        }
        // the embedding host puts it into the broker's publish pipeline, after every stage
        services.AddSingleton(sp => new FeedObserver(sp.GetRequiredService<FeedHub>()));
        services.AddSingleton<IBrokerLink>(sp => new EmbeddedBrokerLink(sp.GetRequiredService<MqttBroker>(), sp.GetRequiredService<IMqttAuthorizer>(), sp.GetRequiredService<TimeProvider>()));
        return services.AddBridgesCore(options, BridgeAuth.RequiresTokenFor(options, brokerAuthOn));
    }

    /// <summary>Everything but the feed's source and the broker link, which the embedding host provides.</summary>
    public static IServiceCollection AddBridgesCore(this IServiceCollection services, BridgesOptions options, bool requireToken)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IMqttAuthenticator, AllowAllAuthenticator>();
        services.AddSingleton(options);
        services.AddSingleton(new MemoryHistory(options.History));
        // the standalone host registers the Kafka history first when Bridges:History:Kafka is set
        services.TryAddSingleton<IHistorySource>(sp => sp.GetRequiredService<MemoryHistory>());
        services.AddSingleton(sp => new FeedHub(sp.GetRequiredService<MemoryHistory>(), options.History.Record));
        services.AddSingleton(sp => new BridgeAuth(new TokenService(TokenService.KeyFrom(options.TokenKey), TimeSpan.FromMinutes(options.TokenLifetimeMinutes), sp.GetRequiredService<TimeProvider>()), requireToken));
        services.AddSingleton(sp => new BridgeMetrics(sp.GetRequiredService<FeedHub>()));
        services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<BridgeMetrics>());
        services.AddSingleton(sp => new StreamRegistry(sp.GetRequiredService<IBrokerLink>(), sp.GetRequiredService<FeedHub>(), TimeSpan.FromSeconds(options.History.IdleSeconds), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<SseEndpoint>();
        services.AddSingleton<WsEndpoint>();
        services.AddSingleton<TokenEndpoint>();
        services.AddSingleton<FleetEndpoint>();
        return services;
    }

    /// <summary>Maps /sse, /ws, /api/token, /api/fleet and, unless Bridges:Dashboard is false, the dashboard from wwwroot at /.</summary>
    public static WebApplication MapBridges(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<BridgesOptions>();
        var sse = app.Services.GetRequiredService<SseEndpoint>();
        var ws = app.Services.GetRequiredService<WsEndpoint>();
        var token = app.Services.GetRequiredService<TokenEndpoint>();
        var fleet = app.Services.GetRequiredService<FleetEndpoint>();
        app.MapGet("/sse", sse.HandleAsync);
        app.Map("/ws", ((IEndpointRouteBuilder)app).CreateApplicationBuilder().UseWebSockets().Use(_ => ws.HandleAsync).Build());
        app.MapPost("/api/token", token.HandleAsync);
        app.MapGet("/api/fleet", fleet.HandleAsync);

        var root = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        if (options.Dashboard && Directory.Exists(root))
        {
            var files = new PhysicalFileProvider(root);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        }
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("IotRealtime.Bridges");
        BridgesLog.Mapped(logger, app.Services.GetRequiredService<BridgeAuth>().RequireToken, options.History.MessagesPerTopic, options.Sse.Overflow, options.WebSocket.Overflow);
        return app;
    }

    static bool BrokerAuthOn(IConfiguration configuration)
    {
        var allowAnonymous = configuration["Auth:AllowAnonymous"];
        var passwordFile = configuration["Auth:PasswordFile"];
        if (bool.TryParse(allowAnonymous, out var allow)) return !allow || !string.IsNullOrWhiteSpace(passwordFile);
        return !string.IsNullOrWhiteSpace(passwordFile);
    }
}
