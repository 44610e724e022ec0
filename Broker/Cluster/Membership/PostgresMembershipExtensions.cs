using Microsoft.Extensions.DependencyInjection;
using Orleans;
using Orleans.Hosting;

namespace IotRealtime.Broker.Cluster.Membership;

public static class PostgresMembershipExtensions
{
    /// <summary>
    /// The silo keeps the cluster's membership in PostgreSQL (<see cref="PostgresMembershipTable"/>). Silos only:
    /// no gateway list provider is registered, as nothing here runs an Orleans client.
    /// </summary>
    public static ISiloBuilder UsePostgresMembership(this ISiloBuilder builder, Action<PostgresMembershipOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure(configure);
        builder.Services.AddSingleton<PostgresMembershipTable>();
        builder.Services.AddSingleton<IMembershipTable>(sp => sp.GetRequiredService<PostgresMembershipTable>());
        builder.Services.AddSingleton<IConfigurationValidator, PostgresMembershipOptionsValidator>();
        return builder;
    }
}
