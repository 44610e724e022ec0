using BenchmarkDotNet.Attributes;
using IotRealtime.Broker.Engine.Routing;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>One filter against one topic: the check the retained store and ACLs run per (filter, topic) pair.</summary>
[MemoryDiagnoser]
public class TopicMatchingBenchmarks
{
    const string Topic = "devices/device-004217/commands/reboot";
    const string SysTopic = "$SYS/broker/clients/connected";

    [Benchmark(Baseline = true)]
    public bool Matches_exact() => TopicValidation.Matches("devices/device-004217/commands/reboot", Topic);

    [Benchmark]
    public bool Matches_plus() => TopicValidation.Matches("devices/+/commands/+", Topic);

    [Benchmark]
    public bool Matches_hash() => TopicValidation.Matches("devices/device-004217/commands/#", Topic);

    [Benchmark]
    public bool Matches_miss_first_level() => TopicValidation.Matches("sensors/+/telemetry", Topic);

    // "#" must not match a $ topic (MQTT-4.7.2-1): rejected before any level is compared
    [Benchmark]
    public bool Matches_hash_vs_SYS() => TopicValidation.Matches("#", SysTopic);

    [Benchmark]
    public bool IsValidTopicName() => TopicValidation.IsValidTopicName(Topic);

    [Benchmark]
    public bool IsValidTopicFilter_wildcards() => TopicValidation.IsValidTopicFilter("devices/+/commands/#");

    [Benchmark]
    public bool IsValidTopicFilter_shared() => TopicValidation.IsValidTopicFilter("$share/workers/devices/+/telemetry");
}
