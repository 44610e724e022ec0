using System.Globalization;
using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine.Cluster;
using Xunit.Abstractions;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// A figure for docs/cluster.md, printed (only the counts are asserted): the managed memory a node's table of its peers'
/// routes takes per filter, for 100,000 distinct wildcard filters from one peer, then the same filters from a second
/// peer. The filter strings are made inside the measurement: a node decodes them off the wire and keeps them.
/// </summary>
public sealed class RouteMemoryMeasurement(ITestOutputHelper output)
{
    const int Filters = 100_000;

    [Fact]
    public void Managed_bytes_per_remote_route()
    {
        var routes = new RemoteRoutes();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        routes.Apply("b", "silo-b", reset: true, MakeRoutes(), []);
        var afterOne = GC.GetTotalMemory(forceFullCollection: true);
        routes.Apply("c", "silo-c", reset: true, MakeRoutes(), []);
        var afterTwo = GC.GetTotalMemory(forceFullCollection: true);

        Assert.Equal(Filters, routes.CountOf("b"));
        Assert.Equal(2 * Filters, routes.Count);
        output.WriteLine($"{Filters} filters from one peer: {(afterOne - before) / (double)Filters:F0} B per filter; " +
            $"the same filters from a second peer: {(afterTwo - afterOne) / (double)Filters:F0} B more per filter (managed)");
        GC.KeepAlive(routes);
    }

    // the shape of fleet subscriptions: fleet/<group>/dev<n>/+ (1,000 devices per group)
    static IEnumerable<ClusterRoute> MakeRoutes()
    {
        for (var i = 0; i < Filters; i++)
        {
            yield return new ClusterRoute(string.Create(CultureInfo.InvariantCulture, $"fleet/{i / 1000}/dev{i}/+"), null);
        }
    }
}
