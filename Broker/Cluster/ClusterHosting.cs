using System.Net;
using IotRealtime.Broker.Cluster.Membership;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Hosting.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.Serialization;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// Co-hosts an Orleans silo in the broker process and registers this node's cluster services. The host calls it
/// only when <c>Cluster:Enabled</c>, so a single node never loads an Orleans type.
/// </summary>
public static class ClusterHosting
{
    /// <summary>
    /// Failure detection: each silo probes its peers every <see cref="ProbeTimeout"/>; <see cref="MissedProbes"/>
    /// missed probes make a suspicion, and <see cref="DeathVotes"/> suspicions (fewer when fewer silos are left)
    /// declare the silo dead — about 2 × 2 s plus a table round, under 10 s.
    /// </summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    public const int MissedProbes = 2;
    public const int DeathVotes = 2;

    /// <summary>Adds the silo and the cluster services to <paramref name="builder"/>: membership in memory on the primary (Development) or in PostgreSQL.</summary>
    public static void AddBrokerCluster(IHostApplicationBuilder builder, BrokerClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ClusterId;
            });
            silo.Configure<SiloOptions>(o => o.SiloName = options.NodeId);
            // no gateway: no Orleans client ever connects, peers talk silo to silo
            silo.ConfigureEndpoints(options.ParsedAdvertisedAddress, options.SiloPort, gatewayPort: 0);
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = ProbeTimeout;
                o.NumMissedProbesLimit = MissedProbes;
                o.NumVotesForDeathDeclaration = DeathVotes;
            });
            switch (options.Membership)
            {
                case ClusterMembershipKind.Development:
                    silo.UseDevelopmentClustering(options.ParsedPrimaryEndpoint);
                    break;
                case ClusterMembershipKind.Postgres:
                    silo.UsePostgresMembership(o => o.ConnectionString = options.ConnectionString!);
                    break;
            }
            silo.Services.AddSerializer(s => s.AddAssembly(typeof(ClusterHosting).Assembly));
            silo.Services.AddPlacementDirector<NodePlacementStrategy, NodePlacementDirector>();
            silo.Services.AddSingleton(options);
            silo.Services.AddSingleton(sp => new ClusterNode(options, sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<ILocalSiloDetails>(),
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ClusterNode>>(),
                () => sp.GetRequiredService<MqttBroker>()));
            silo.Services.AddSingleton<IClusterLink>(sp => sp.GetRequiredService<ClusterNode>());
            silo.Services.AddSingleton<IMetricsSource>(sp => sp.GetRequiredService<ClusterNode>());
            silo.Services.AddHostedService<MembershipWatcher>();
            silo.Services.AddSingleton(sp => new SessionOwnership(options, sp, sp.GetRequiredService<IGrainFactory>(),
                sp.GetRequiredService<IClusterMembershipService>(), sp.GetRequiredService<TimeProvider>()));
            silo.Services.AddSingleton<IClusterSessions>(sp => sp.GetRequiredService<SessionOwnership>());
            silo.Services.AddHostedService<OwnershipWatcher>();
        });
    }

    /// <summary>The cluster's link for the engine, from the host's services; null when the cluster is off.</summary>
    public static IClusterLink? LinkFrom(IServiceProvider services) => services.GetService<IClusterLink>();

    /// <summary>Writes the body of <c>GET /api/cluster</c> (docs/cluster.md, "/api/cluster").</summary>
    public static void WriteStatus(IServiceProvider services, System.Text.Json.Utf8JsonWriter writer)
    {
        ArgumentNullException.ThrowIfNull(services);
        ClusterStatus.Write(writer, services.GetRequiredService<ClusterNode>(), services.GetRequiredService<MqttBroker>(),
            services.GetRequiredService<TimeProvider>().GetUtcNow());
    }

    /// <summary>Logs where the node's silo is, once the host started.</summary>
    public static void LogStarted(IServiceProvider services, BrokerClusterOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        var log = services.GetRequiredService<ILogger<ClusterNode>>();
        ClusterLog.Starting(log, options.NodeId, options.ClusterId, new IPEndPoint(options.ParsedAdvertisedAddress, options.SiloPort).ToString(), options.Membership.ToString());
    }
}
