using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// Broker hosts with <c>Cluster:Membership=Postgres</c> on a real throwaway PostgreSQL: they find each other through the
/// table and behave as one broker; a membership database that cannot be reached stops the broker with exit code 2
/// naming the key.
/// </summary>
public sealed class PostgresClusterTests(MembershipPostgresFixture postgres) : IClassFixture<MembershipPostgresFixture>, IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-pgcluster-").FullName;

    [Fact]
    public async Task Nodes_joined_through_PostgreSQL_deliver_across_nodes()
    {
        var database = await postgres.NewDatabaseAsync();
        await using var nodes = await ClusterNodes.StartAsync(["pa", "pb"], new Dictionary<string, string?>
        {
            ["Cluster:Membership"] = "Postgres",
            ["Cluster:ConnectionString"] = database,
        });
        await using var subscriber = await MqttTestClient.ConnectAsync(nodes["pb"], MqttProtocolVersion.V311);
        await subscriber.SubscribeAsync("pg/cluster", MqttQualityOfServiceLevel.AtLeastOnce);
        await nodes.WaitForRouteAsync("pa", "pb", "pg/cluster");

        await using var publisher = await MqttTestClient.ConnectAsync(nodes["pa"], MqttProtocolVersion.V500);
        await publisher.PublishAsync("pg/cluster", "through postgres", MqttQualityOfServiceLevel.AtLeastOnce);

        await subscriber.WaitForMessageAsync("pg/cluster", Timeouts.Default);
        Assert.Equal("through postgres", Assert.Single(subscriber.Received, m => m.Topic == "pg/cluster").Payload);
    }

    [Fact]
    public async Task A_membership_database_that_cannot_be_reached_exits_2_naming_the_key()
    {
        var closedPort = BrokerProcess.FreePort();
        await using var broker = ExternalProcess.Start("dotnet", Path.Combine(AppContext.BaseDirectory, "iotrealtime-broker.dll"),
            "--Listeners:BindAddress=127.0.0.1", "--Listeners:MqttPort=0", "--Listeners:HttpPort=0", $"--Data:Directory={_dir}",
            "--Cluster:Enabled=true", "--Cluster:NodeId=lonely", "--Cluster:Membership=Postgres", $"--Cluster:SiloPort={BrokerProcess.FreePort()}",
            $"--Cluster:ConnectionString=Host=127.0.0.1;Port={closedPort};Database=none;Username=none;Password=secret-word");
        Assert.Equal(2, await broker.WaitForExitAsync(Timeouts.Default));
        Assert.Contains("Cluster:ConnectionString", broker.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-word", broker.Output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
