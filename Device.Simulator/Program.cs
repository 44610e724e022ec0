using IotRealtime.Device.Simulator;
using IotRealtime.Device.Simulator.Scenarios;
using IotRealtime.Device.Simulator.Scenarios.Bench;
using IotRealtime.Device.Simulator.Scenarios.FanIn;
using IotRealtime.Device.Simulator.Scenarios.Fleet;
using IotRealtime.Device.Simulator.Scenarios.Soak;

// Several fleet reports (processes, hosts) into one.
if (MergeCommand.Handles(args)) return await MergeCommand.RunAsync(args[1..], Console.Out, Console.Error);

// The fleet model has options of its own (iotrealtime-sim run --help).
if (FleetCommand.Handles(args))
{
    using var fleetStop = new StopSignal();
    return await FleetCommand.RunAsync(args, fleetStop.Token);
}

if (!SimulatorOptions.TryParse(args, out var options, out var error))
{
    Console.Error.WriteLine($"iotrealtime-sim: {error}");
    Console.Error.WriteLine();
    Console.Error.WriteLine(SimulatorOptions.Usage);
    return 2;
}

if (options.ShowHelp)
{
    Console.WriteLine(SimulatorOptions.Usage);
    return 0;
}

using var stop = new StopSignal();
return options.Scenario switch
{
    "idle" or "connect" => await new IdleScenario(options, TimeProvider.System, Console.Out).RunAsync(stop.Token),
    "fanin" => await new FanInScenario(options, TimeProvider.System, Console.Out).RunAsync(stop.Token),
    "fanout" or "p2p" or "shared" or "latency" => await new BenchScenario(options, TimeProvider.System, Console.Out).RunAsync(stop.Token),
    "soak" => await new SoakScenario(options, TimeProvider.System, Console.Out).RunAsync(stop.Token),
    _ => throw new InvalidOperationException($"scenario '{options.Scenario}' passed validation but has no runner"),
};
