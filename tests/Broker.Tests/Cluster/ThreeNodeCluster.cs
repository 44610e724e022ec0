namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>Nodes a, b and c, started once for the tests that share them (each uses topics of its own).</summary>
public sealed class ThreeNodeCluster : IAsyncLifetime
{
    public ClusterNodes Nodes { get; private set; } = null!;

    public async Task InitializeAsync() => Nodes = await ClusterNodes.StartAsync(["a", "b", "c"]);

    public async Task DisposeAsync()
    {
        if (Nodes is not null) await Nodes.DisposeAsync();
    }
}
