using BenchmarkDotNet.Attributes;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Sessions;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>
/// The trie behind every publish. One session per device subscribed to <c>devices/{id}/commands/#</c>, plus a few
/// wildcard monitors and a shared group of workers on <c>devices/+/telemetry</c>. Match cost should not move
/// between 10k and 100k subscriptions: it follows topic levels and matches, not the session count.
/// </summary>
[MemoryDiagnoser]
public class SubscriptionTrieBenchmarks
{
    SubscriptionTrie _trie = null!;
    readonly List<Subscription> _matches = new(16);
    Subscription _churn = null!;
    string _commandTopic = null!;
    string _telemetryTopic = null!;

    [Params(10_000, 100_000)]
    public int Subscriptions { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _trie = new SubscriptionTrie();
        for (var i = 0; i < Subscriptions; i++)
        {
            var filter = $"devices/device-{i:D6}/commands/#";
            _trie.Add(new Subscription(new Session($"device-{i:D6}"), filter, null, filter));
        }
        // what a fleet dashboard, an auditor and a telemetry worker pool subscribe to
        Add("monitor", "devices/+/status");
        Add("auditor", "devices/#");
        for (var w = 0; w < 4; w++)
        {
            var session = new Session($"worker-{w}");
            _trie.Add(new Subscription(session, "$share/workers/devices/+/telemetry", "workers", "devices/+/telemetry"));
        }
        var probe = Subscriptions / 2;
        _commandTopic = $"devices/device-{probe:D6}/commands/reboot";
        _telemetryTopic = $"devices/device-{probe:D6}/telemetry";
        var churnFilter = $"devices/device-{Subscriptions + 1:D6}/commands/#";
        _churn = new Subscription(new Session("churn"), churnFilter, null, churnFilter);
    }

    void Add(string clientId, string filter) => _trie.Add(new Subscription(new Session(clientId), filter, null, filter));

    /// <summary>A command to one device: its own subscription plus the auditor's "devices/#".</summary>
    [Benchmark]
    public int Match_command()
    {
        _matches.Clear();
        _trie.Match(_commandTopic, _matches);
        return _matches.Count;
    }

    /// <summary>Telemetry: the auditor plus one pick from the shared group (round robin under the group's lock).</summary>
    [Benchmark]
    public int Match_telemetry_shared()
    {
        _matches.Clear();
        _trie.Match(_telemetryTopic, _matches);
        return _matches.Count;
    }

    [Benchmark]
    public int Match_no_subscriber()
    {
        _matches.Clear();
        _trie.Match("factory/line-1/temperature", _matches);
        return _matches.Count;
    }

    /// <summary>A device subscribing and unsubscribing: one new branch created and pruned again.</summary>
    [Benchmark]
    public bool Add_then_remove()
    {
        _trie.Add(_churn);
        return _trie.Remove(_churn);
    }
}
