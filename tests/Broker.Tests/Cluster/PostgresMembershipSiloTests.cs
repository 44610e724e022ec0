using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Cluster.Membership;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>Real Orleans silos in this process, on loopback ports, with their membership in a real PostgreSQL.</summary>
public sealed class PostgresMembershipSiloTests(MembershipPostgresFixture postgres) : IClassFixture<MembershipPostgresFixture>
{
    static readonly TimeSpan SiloTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Two_silos_form_a_cluster_and_one_sees_the_other_leave()
    {
        var clusterId = "silos-" + Guid.NewGuid().ToString("N");
        var first = BuildSilo(postgres.ConnectionString, clusterId);
        var second = BuildSilo(postgres.ConnectionString, clusterId);
        bool firstRunning = false, secondRunning = false;
        try
        {
            await first.StartAsync().WaitAsync(SiloTimeout);
            firstRunning = true;
            await second.StartAsync().WaitAsync(SiloTimeout);
            secondRunning = true;
            var firstAddress = AddressOf(first);
            var secondAddress = AddressOf(second);

            await Wait.UntilAsync(() => StatusIn(first, secondAddress) == SiloStatus.Active && StatusIn(second, firstAddress) == SiloStatus.Active,
                SiloTimeout, "each silo to see the other Active");
            await using (var table = postgres.NewTable(clusterId))
            {
                await table.InitializeMembershipTable(false);
                var rows = (await table.ReadAll()).Members.ToDictionary(m => m.Item1.SiloAddress, m => m.Item1.Status);
                Assert.Equal(SiloStatus.Active, rows[firstAddress]);
                Assert.Equal(SiloStatus.Active, rows[secondAddress]);
            }

            firstRunning = false;
            await first.StopAsync().WaitAsync(SiloTimeout);

            await Wait.UntilAsync(() => StatusIn(second, firstAddress) is SiloStatus.ShuttingDown or SiloStatus.Stopping or SiloStatus.Dead,
                SiloTimeout, "the remaining silo to see the stopped one leave");
            await using (var table = postgres.NewTable(clusterId))
            {
                await table.InitializeMembershipTable(false);
                var status = SiloStatus.None;
                await Wait.UntilAsync(() =>
                {
                    status = table.ReadRow(firstAddress).GetAwaiter().GetResult().Members.Single().Item1.Status;
                    return status == SiloStatus.Dead;
                }, SiloTimeout, "the stopped silo's row to read Dead");
                Assert.Equal(SiloStatus.Active, (await table.ReadRow(secondAddress)).Members.Single().Item1.Status);
            }
        }
        finally
        {
            await (secondRunning ? StopAsync(second) : StopAfterFailedStartAsync(second));
            await (firstRunning ? StopAsync(first) : StopAfterFailedStartAsync(first));
        }
    }

    [Fact]
    public async Task A_silo_pointed_at_no_database_fails_to_start_naming_the_key()
    {
        var connectionString = $"Host=127.0.0.1;Port={FreePort()};Username=postgres;Database=iot;Timeout=5";
        var silo = BuildSilo(connectionString, "unreachable-" + Guid.NewGuid().ToString("N"));
        try
        {
            var failure = await Assert.ThrowsAnyAsync<Exception>(() => silo.StartAsync().WaitAsync(SiloTimeout));
            var cause = PostgresMembershipException.Find(failure);
            Assert.True(cause is not null, "not found in: " + failure);
            Assert.Equal("Cluster:ConnectionString", cause.ConfigurationKey);
            Assert.StartsWith("Cluster:ConnectionString: cannot reach PostgreSQL", cause.Message, StringComparison.Ordinal);
        }
        finally
        {
            await StopAfterFailedStartAsync(silo);
        }
    }

    [Fact]
    public async Task A_silo_with_an_invalid_connection_string_fails_to_start_naming_the_key()
    {
        var silo = BuildSilo("Host=127.0.0.1;Flavour=strawberry", "invalid-" + Guid.NewGuid().ToString("N"));
        try
        {
            var failure = await Assert.ThrowsAnyAsync<Exception>(() => silo.StartAsync().WaitAsync(SiloTimeout));
            var cause = PostgresMembershipException.Find(failure);
            Assert.True(cause is not null, "not found in: " + failure);
            Assert.StartsWith("Cluster:ConnectionString is not a valid PostgreSQL connection string", cause.Message, StringComparison.Ordinal);
        }
        finally
        {
            await StopAfterFailedStartAsync(silo);
        }
    }

    static IHost BuildSilo(string connectionString, string clusterId) =>
        new HostBuilder()
            .UseOrleans(silo => silo
                .UsePostgresMembership(options => options.ConnectionString = connectionString)
                .Configure<ClusterOptions>(options =>
                {
                    options.ClusterId = clusterId;
                    options.ServiceId = "iotrealtime-tests";
                })
                .ConfigureEndpoints(IPAddress.Loopback, FreePort(), gatewayPort: 0)
                // Read the table often, so a change another silo missed by gossip is seen soon.
                .Configure<ClusterMembershipOptions>(options => options.TableRefreshTimeout = TimeSpan.FromSeconds(1)))
            .Build();

    static SiloAddress AddressOf(IHost silo) => silo.Services.GetRequiredService<ILocalSiloDetails>().SiloAddress;

    static SiloStatus StatusIn(IHost observer, SiloAddress silo) =>
        observer.Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.GetSiloStatus(silo);

    static async Task StopAsync(IHost silo)
    {
        try
        {
            using var cancel = new CancellationTokenSource(SiloTimeout);
            await silo.StopAsync(cancel.Token);
        }
        finally
        {
            silo.Dispose();
        }
    }

    // A start that failed may have left part of the silo running; the host's own stop can throw after such a start.
    static async Task StopAfterFailedStartAsync(IHost silo)
    {
        try
        {
            using var cancel = new CancellationTokenSource(SiloTimeout);
            await silo.StopAsync(cancel.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ArgumentNullException or InvalidOperationException)
        {
            // Nothing more to stop; disposing the host releases what is left.
        }
        finally
        {
            silo.Dispose();
        }
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
