using IotRealtime.Device.Simulator.Fleet;

namespace IotRealtime.Device.Simulator.Scenarios.Fleet;

/// <summary><c>iotrealtime-sim run|fleet ...</c>: parses the fleet options and runs in this process or as children.</summary>
public static class FleetCommand
{
    public static bool Handles(string[] args) => args.Length > 0 && args[0] is "run" or "fleet";

    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var rest = args[1..];
        if (!FleetOptions.TryParse(rest, out var options, out var error))
        {
            await Console.Error.WriteLineAsync($"iotrealtime-sim: {error}").ConfigureAwait(false);
            await Console.Error.WriteLineAsync("(iotrealtime-sim run --help lists the options)").ConfigureAwait(false);
            return 2;
        }

        if (options.ShowHelp)
        {
            Console.WriteLine(FleetOptions.Usage);
            return 0;
        }

        try
        {
            return options.Processes > 1
                ? await new FleetProcessSplit(options, rest, Console.Out).RunAsync(cancellationToken).ConfigureAwait(false)
                : await new FleetScenario(options, TimeProvider.System, Console.Out).RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"iotrealtime-sim: {e.Message}").ConfigureAwait(false);
            return 2;
        }
    }
}
