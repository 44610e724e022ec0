using System.Diagnostics;
using System.Globalization;
using IotRealtime.Device.Simulator.Fleet;
using IotRealtime.Hosting.Limits;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>
/// The per-process connection cap comes from RLIMIT_NOFILE, less the broker's reserve, instead of a constant (the reserve
/// and the reading of the limit are tested with the broker: ConnectionLimitTests).
/// </summary>
public sealed class OpenFileLimitTests
{
    [Fact]
    public async Task The_cap_is_this_processes_open_file_limit_as_the_shell_reports_it_less_the_reserve()
    {
        // A child shell inherits this process's limits; "ulimit -Sn" reads them with getrlimit.
        var shell = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "ulimit -Sn"]) { RedirectStandardOutput = true })!;
        var text = (await shell.StandardOutput.ReadToEndAsync()).Trim();
        await shell.WaitForExitAsync();

        var limit = text == "unlimited" ? FleetOptions.FallbackOpenFiles : long.Parse(text, CultureInfo.InvariantCulture);
        Assert.Equal(OpenFileLimit.ConnectionCap(limit), FleetOptions.MaxConnectionsPerProcess);
    }

    [Fact]
    public void More_devices_per_process_than_the_cap_are_refused_with_the_processes_needed()
    {
        var cap = FleetOptions.MaxConnectionsPerProcess;
        var over = (cap + 1).ToString(CultureInfo.InvariantCulture);
        Assert.False(FleetOptions.TryParse(["--devices", over, "--source-base", "none"], out _, out var error));
        Assert.Contains("raise --processes to at least 2", error, StringComparison.Ordinal);
        Assert.Contains(cap.ToString(CultureInfo.InvariantCulture), error, StringComparison.Ordinal);

        Assert.True(FleetOptions.TryParse(["--devices", over, "--processes", "2", "--source-base", "none"], out _, out error), error);
    }

    [Fact]
    public void The_documented_million_device_example_fits_a_20000_file_limit()
    {
        // docs/simulator.md: --devices 1000000 --shard h/10 --processes 6, i.e. 16,667 connections per process.
        Assert.True(FleetOptions.TryParse(["--devices", "1000000", "--shard", "3/10", "--processes", "6", "--source-base", "10.1.3.2", "--per-source", "10000"],
            out var options, out var error), error);
        var (_, local) = options.LocalDevices;
        Assert.True((local + 5) / 6 <= OpenFileLimit.ConnectionCap(20_000));
    }
}
