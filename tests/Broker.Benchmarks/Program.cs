using BenchmarkDotNet.Running;

namespace IotRealtime.Broker.Benchmarks;

public static class Program
{
    // BenchmarkSwitcher keeps the usual command line: --filter, --list flat, --job, --memory ...
    public static void Main(string[] args) =>
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new ShortRunConfig());
}
