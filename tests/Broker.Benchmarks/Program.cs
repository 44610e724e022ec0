using BenchmarkDotNet.Running;

namespace IotRealtime.Broker.Benchmarks;

public static class Program
{
    // BenchmarkSwitcher keeps the usual command line: --filter, --list flat, --job, --memory ...
    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == KafkaMockLauncher.Name) return await KafkaMockLauncher.RunAsync(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new ShortRunConfig());
        return 0;
    }
}
