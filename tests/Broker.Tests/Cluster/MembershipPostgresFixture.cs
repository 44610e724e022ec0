using IotRealtime.Broker.Cluster.Membership;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>One throwaway PostgreSQL per test class; tests keep apart by cluster id, or take a database of their own.</summary>
public sealed class MembershipPostgresFixture : IAsyncLifetime
{
    int _databases;

    public PostgresServer Server { get; private set; } = null!;

    /// <summary>The database the membership tests share (each test under a cluster id of its own).</summary>
    public string ConnectionString { get; private set; } = string.Empty;

    public Task<string> NewDatabaseAsync() => Server.CreateDatabaseAsync($"membership_{Interlocked.Increment(ref _databases)}");

    /// <summary>A table for <paramref name="clusterId"/> on <paramref name="connectionString"/> (the shared database by default), not yet initialised.</summary>
    public PostgresMembershipTable NewTable(string clusterId, string? connectionString = null) => new(
        Options.Create(new PostgresMembershipOptions { ConnectionString = connectionString ?? ConnectionString }),
        Options.Create(new ClusterOptions { ClusterId = clusterId, ServiceId = "iotrealtime-tests" }),
        NullLogger<PostgresMembershipTable>.Instance);

    public async Task InitializeAsync()
    {
        Server = await PostgresServer.StartAsync();
        ConnectionString = await NewDatabaseAsync();
    }

    public async Task DisposeAsync()
    {
        if (Server is not null) await Server.DisposeAsync();
    }
}
