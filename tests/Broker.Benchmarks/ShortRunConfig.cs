using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>One launch, few iterations: a full run takes minutes, not an hour. Pass --job to override.</summary>
public sealed class ShortRunConfig : ManualConfig
{
    public ShortRunConfig()
    {
        Add(DefaultConfig.Instance);
        // under the git-ignored artifacts/ folder rather than a BenchmarkDotNet.Artifacts/ beside the sources
        ArtifactsPath = Path.Combine(Directory.GetCurrentDirectory(), "artifacts", "benchmarks");
        AddJob(Job.Default.WithId("short").WithLaunchCount(1).WithWarmupCount(3).WithIterationCount(5));
        AddDiagnoser(MemoryDiagnoser.Default);
    }
}
