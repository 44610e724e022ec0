using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Host;
using IotRealtime.Broker.Host.Configuration;
using IotRealtime.Broker.Tests.Host;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>The Cluster section: bad values stop the start naming their key; off by default with nothing of the cluster registered.</summary>
public sealed class ClusterConfigurationTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-cluster-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("Cluster:NodeId", "", "Cluster:NodeId must be set")]
    [InlineData("Cluster:NodeId", "node 1", "Cluster:NodeId")]
    [InlineData("Cluster:ClusterId", "a/b", "Cluster:ClusterId")]
    [InlineData("Cluster:Membership", "Zookeeper", "Cluster:Membership")]
    [InlineData("Cluster:PrimaryEndpoint", "nowhere", "Cluster:PrimaryEndpoint")]
    [InlineData("Cluster:AdvertisedAddress", "0.0.0.0", "Cluster:AdvertisedAddress")]
    [InlineData("Cluster:SiloPort", "0", "Cluster:SiloPort")]
    [InlineData("Cluster:PeerQueueMessages", "0", "Cluster:PeerQueueMessages")]
    [InlineData("Cluster:PeerOverflowPolicy", "Block", "Cluster:PeerOverflowPolicy")]
    [InlineData("Cluster:PeerBatchMessages", "0", "Cluster:PeerBatchMessages")]
    public async Task Invalid_cluster_setting_is_reported_by_key(string key, string value, string expected)
    {
        var settings = new List<(string, string?)> { ("Cluster:Enabled", "true"), ("Cluster:NodeId", "n1"), (key, value) };
        var error = await Assert.ThrowsAsync<BrokerConfigurationException>(() => BrokerHost.StartAsync(HostTestConfig.Build(Path.Combine(_dir, "data"), [.. settings])));
        Assert.Contains(error.Errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null, "Cluster:ConnectionString must be set")]
    [InlineData("Host=db;Nonsense Key=1", "Cluster:ConnectionString is not a valid")]
    public async Task Postgres_membership_needs_a_valid_connection_string(string? connectionString, string expected)
    {
        var error = await Assert.ThrowsAsync<BrokerConfigurationException>(() => BrokerHost.StartAsync(HostTestConfig.Build(Path.Combine(_dir, "data"),
            ("Cluster:Enabled", "true"), ("Cluster:NodeId", "n1"), ("Cluster:Membership", "Postgres"), ("Cluster:ConnectionString", connectionString))));
        Assert.Contains(error.Errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Off_by_default_with_no_cluster_link_in_the_engine()
    {
        await using var broker = await TestBroker.StartAsync();
        Assert.False(broker.Host.Settings.Cluster.Enabled);
        Assert.Null(broker.Host.Services.GetService<IClusterLink>());
    }
}
