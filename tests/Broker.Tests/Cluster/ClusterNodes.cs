using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// Broker hosts in this process joined as one cluster with Development membership on loopback: the first node is the
/// primary. Started nodes are stopped on disposal, also when a test fails.
/// </summary>
public sealed class ClusterNodes : IAsyncDisposable
{
    readonly List<(string Id, TestBroker Broker)> _nodes = [];
    readonly Dictionary<string, string?> _settings;
    int _primarySiloPort;

    ClusterNodes(Dictionary<string, string?> settings) => _settings = settings;

    public IEnumerable<string> Ids => _nodes.Select(n => n.Id);

    public TestBroker this[string id] => _nodes.Single(n => n.Id == id).Broker;

    /// <summary>Starts <paramref name="ids"/> in order (the first is the primary) and waits until each has a synced link to every other.</summary>
    public static async Task<ClusterNodes> StartAsync(IEnumerable<string> ids, Dictionary<string, string?>? settings = null)
    {
        var nodes = new ClusterNodes(settings ?? []);
        try
        {
            foreach (var id in ids) await nodes.AddAsync(id);
            await nodes.WaitUntilMeshedAsync();
            return nodes;
        }
        catch
        {
            await nodes.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts one more node on a free loopback silo port; it joins through the primary.</summary>
    public async Task<TestBroker> AddAsync(string id, IReadOnlyDictionary<string, string?>? nodeSettings = null)
    {
        var siloPort = FreePort();
        if (_nodes.Count == 0) _primarySiloPort = siloPort;
        var values = new Dictionary<string, string?>(_settings)
        {
            ["Cluster:Enabled"] = "true",
            ["Cluster:NodeId"] = id,
            ["Cluster:ClusterId"] = "test-" + _primarySiloPort,
            ["Cluster:SiloPort"] = siloPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Cluster:PrimaryEndpoint"] = "127.0.0.1:" + _primarySiloPort,
        };
        foreach (var (key, value) in nodeSettings ?? new Dictionary<string, string?>()) values[key] = value;
        var broker = await TestBroker.StartAsync(values);
        _nodes.Add((id, broker));
        return broker;
    }

    /// <summary>Stops node <paramref name="id"/> (not the primary: Development membership lives there).</summary>
    public async Task StopAsync(string id)
    {
        var node = _nodes.Single(n => n.Id == id);
        _nodes.Remove(node);
        await node.Broker.DisposeAsync();
    }

    internal ClusterNode Node(string id) => (ClusterNode)this[id].Host.Services.GetRequiredService<IClusterLink>();

    internal PeerLink Link(string from, string to) => Node(from).Peers.Single(p => p.Node == to);

    /// <summary>Waits until every node has a link to every other, and every link has delivered its full route set.</summary>
    public Task WaitUntilMeshedAsync() => Wait.UntilAsync(() => _nodes.All(n =>
        Node(n.Id).Peers.Count == _nodes.Count - 1 && Node(n.Id).Peers.All(p => p.Synced)), TimeSpan.FromSeconds(60),
        $"{_nodes.Count} nodes linked to each other");

    /// <summary>Waits until node <paramref name="on"/> knows that node <paramref name="holder"/> holds <paramref name="filter"/> (or, with <paramref name="present"/> false, no longer does).</summary>
    public Task WaitForRouteAsync(string on, string holder, string filter, string? group = null, bool present = true) =>
        Wait.UntilAsync(() => Node(on).Remote.Has(holder, new ClusterRoute(filter, group)) == present, Timeouts.Default,
            $"node {on} to {(present ? "learn" : "forget")} route '{filter}' of node {holder}");

    /// <summary>Waits until every other node knows <paramref name="holder"/>'s route <paramref name="filter"/>.</summary>
    public async Task WaitForRouteEverywhereAsync(string holder, string filter, string? group = null)
    {
        foreach (var id in Ids.Where(i => i != holder)) await WaitForRouteAsync(id, holder, filter, group);
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        // the primary last: the others leave its membership table cleanly
        for (var i = _nodes.Count - 1; i >= 0; i--)
        {
            await _nodes[i].Broker.DisposeAsync();
        }
        _nodes.Clear();
    }
}
