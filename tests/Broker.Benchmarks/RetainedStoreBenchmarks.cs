using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Retained;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>
/// A SUBSCRIBE's retained lookup with 1,000,000 retained messages, <c>site/{000000..099999}/d{0..9}/state</c>, and a
/// filter that matches the 10 of one group. The topic tree walks to them; the linear scan it replaced tests every
/// retained topic. One operation is one lookup (10 messages found).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(TrendConfig))]
public class RetainedStoreBenchmarks
{
    /// <summary>The ratio column says "N x faster": as a fraction of the scan, the tree's ratio prints as 0.000.</summary>
    sealed class TrendConfig : ManualConfig
    {
        public TrendConfig() => SummaryStyle = SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend);
    }

    const int Groups = 100_000;
    const int PerGroup = 10;

    InMemoryRetainedStore _tree = null!;
    LinearRetainedScan _linear = null!;
    readonly DateTimeOffset _now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    [Params("site/042424/+/state", "site/042424/#")]
    public string Filter { get; set; } = "";

    static IEnumerable<MqttMessage> Messages()
    {
        // one payload array for all: the figures are about the lookup, not a gigabyte of payloads
        var payload = new byte[] { 0x31 };
        for (var g = 0; g < Groups; g++)
        {
            for (var d = 0; d < PerGroup; d++)
            {
                yield return new MqttMessage { Topic = $"site/{g:D6}/d{d}/state", Payload = payload, Retain = true };
            }
        }
    }

    [GlobalSetup(Target = nameof(Tree))]
    public void SetUpTree()
    {
        _tree = new InMemoryRetainedStore();
        foreach (var message in Messages())
        {
            _tree.Set(message);
        }
        Check(_tree.Count, Tree());
    }

    [GlobalSetup(Target = nameof(LinearScan))]
    public void SetUpLinear()
    {
        _linear = new LinearRetainedScan();
        foreach (var message in Messages())
        {
            _linear.Set(message);
        }
        Check(Groups * PerGroup, LinearScan());
    }

    static void Check(int retained, int matched)
    {
        if (retained != Groups * PerGroup || matched != PerGroup)
        {
            throw new InvalidOperationException($"set-up: {retained} retained, {matched} matched; expected {Groups * PerGroup} and {PerGroup}");
        }
    }

    [Benchmark(Baseline = true)]
    public int LinearScan() => _linear.Match(Filter, _now).Count;

    [Benchmark]
    public int Tree() => _tree.Match(Filter, _now).Count;
}
