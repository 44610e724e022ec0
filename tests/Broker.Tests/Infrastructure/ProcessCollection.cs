namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>Tests that start broker processes and drive load: run alone, not beside the rest of the suite, on a 2-core machine.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessCollection
{
    public const string Name = "Broker processes";
}
