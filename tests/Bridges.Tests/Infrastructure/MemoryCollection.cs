namespace IotRealtime.Bridges.Tests.Infrastructure;

/// <summary>Tests that measure the process's live memory: run alone, so other tests' allocations do not count.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryCollection
{
    public const string Name = "Memory measuring";
}
