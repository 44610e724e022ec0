using System.Globalization;
using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine.Cluster;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// A figure for docs/cluster.md, printed, never asserted: the managed memory per client id registered in the ownership
/// registry, for 50,000 claims made through the grain calls on a two-node cluster (both nodes in this process).
/// </summary>
public sealed class OwnershipMemoryMeasurement(ITestOutputHelper output)
{
    const int Claims = 50_000;

    [Fact]
    public async Task Managed_bytes_per_registered_client_id()
    {
        await using var nodes = await ClusterNodes.StartAsync(["a", "b"], new() { ["Logging:LogLevel:Default"] = "Warning" });
        var a = (SessionOwnership)nodes["a"].Host.Services.GetRequiredService<IClusterSessions>();
        var b = (SessionOwnership)nodes["b"].Host.Services.GetRequiredService<IClusterSessions>();
        // ids made before the first reading: the connection holds its id anyway, the registry's cost is what it adds
        var ids = Enumerable.Range(0, Claims).Select(i => "device-" + i.ToString("D6", CultureInfo.InvariantCulture)).ToArray();
        await a.ClaimAsync("warm-up", cleanStart: false, CancellationToken.None);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        foreach (var chunk in ids.Chunk(500))
        {
            await Task.WhenAll(chunk.Select(id => a.ClaimAsync(id, cleanStart: false, CancellationToken.None).AsTask()));
        }
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var registered = a.RegisteredCount + b.RegisteredCount;
        output.WriteLine($"{registered} ids registered (a {a.RegisteredCount}, b {b.RegisteredCount}): {(after - before) / (double)Claims:F0} B per claim, managed, both nodes");
        GC.KeepAlive(ids);
    }
}
