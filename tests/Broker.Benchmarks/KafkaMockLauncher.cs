using System.Globalization;
using System.Runtime.InteropServices;
using IotRealtime.Testing;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>
/// <c>kafka-mock [--brokers N] [--topics name:partitions,...] [--max-seconds S]</c>: librdkafka's mock cluster as a
/// process of its own, so a broker process can reach it over loopback (scripts/bench-kafka.sh). Prints
/// <c>bootstrap=HOST:PORT</c> once the topics exist, then serves until SIGTERM/SIGINT or --max-seconds.
/// </summary>
public static class KafkaMockLauncher
{
    public const string Name = "kafka-mock";

    public static async Task<int> RunAsync(string[] args)
    {
        var brokers = 1;
        var topics = new List<(string Name, int Partitions)>();
        var maxSeconds = 3600;
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            switch (args[i])
            {
                case "--brokers" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out brokers) && brokers > 0:
                    i++;
                    break;
                case "--max-seconds" when int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out maxSeconds) && maxSeconds > 0:
                    i++;
                    break;
                case "--topics" when value is not null:
                    foreach (var spec in value.Split(',', StringSplitOptions.RemoveEmptyEntries))
                    {
                        var parts = spec.Split(':');
                        var partitions = 1;
                        if (parts.Length > 2 || (parts.Length == 2 && !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out partitions)) || partitions < 1)
                        {
                            await Console.Error.WriteLineAsync($"kafka-mock: '{spec}' is not name[:partitions]").ConfigureAwait(false);
                            return 2;
                        }
                        topics.Add((parts[0], partitions));
                    }
                    i++;
                    break;
                default:
                    await Console.Error.WriteLineAsync("usage: kafka-mock [--brokers N] [--topics name:partitions,...] [--max-seconds S]").ConfigureAwait(false);
                    return 2;
            }
        }

        await using var cluster = KafkaMockCluster.Start(brokers);
        foreach (var (name, partitions) in topics) cluster.CreateTopic(name, partitions);
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
        Console.WriteLine("bootstrap=" + cluster.BootstrapServers);
        await Console.Out.FlushAsync().ConfigureAwait(false);
        await Task.WhenAny(stop.Task, Task.Delay(TimeSpan.FromSeconds(maxSeconds))).ConfigureAwait(false);
        return 0;
    }
}
