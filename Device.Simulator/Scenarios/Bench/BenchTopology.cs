namespace IotRealtime.Device.Simulator.Scenarios.Bench;

/// <summary>
/// Who publishes where and who should receive what, for each scenario this folder runs. Publisher i always sends to
/// <c>bench/i</c> (the fan-in publisher's topic).
/// </summary>
public sealed record BenchTopology(string Scenario, int Publishers, int Subscribers, int DeliveriesPerMessage, bool SharedGroup, bool OpenLoop)
{
    public const string SharedFilter = "$share/g/bench/#";

    public static readonly string[] Scenarios = ["fanout", "p2p", "shared", "latency"];

    public static BenchTopology From(SimulatorOptions options) => options.Scenario switch
    {
        // One publisher, every subscriber on its topic: each message is delivered once per subscriber.
        "fanout" => new("fanout", 1, options.Subscribers, options.Subscribers, false, false),
        // Publisher i to subscriber i only.
        "p2p" => new("p2p", options.Publishers, options.Publishers, 1, false, false),
        // One group of consumers shares everything; each message goes to exactly one of them.
        "shared" => new("shared", options.Publishers, options.Subscribers, 1, true, false),
        // A few publishers at a fixed total rate to one subscriber.
        "latency" => new("latency", options.Publishers, 1, 1, false, true),
        _ => throw new ArgumentException($"'{options.Scenario}' is not a {string.Join("/", Scenarios)} scenario", nameof(options)),
    };

    /// <summary>The filter subscriber <paramref name="index"/> subscribes to.</summary>
    public string Filter(int index) => Scenario switch
    {
        "fanout" => "bench/0",
        "p2p" => $"bench/{index}",
        "shared" => SharedFilter,
        _ => "bench/#",
    };

    /// <summary>Whether subscriber <paramref name="index"/> should get publisher <paramref name="publisher"/>'s messages (outside a shared group).</summary>
    public bool Expects(int index, int publisher) => Scenario != "p2p" || index == publisher;
}
