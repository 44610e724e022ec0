using System.Diagnostics;
using System.Globalization;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Device.Simulator.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The per-process connection cap comes from RLIMIT_NOFILE, less a reserve, instead of a constant.</summary>
public sealed class OpenFileLimitTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("sim-limits-").FullName;

    [Fact]
    public async Task The_cap_is_this_processes_open_file_limit_as_the_shell_reports_it_less_the_reserve()
    {
        // A child shell inherits this process's limits; "ulimit -Sn" reads them with getrlimit.
        var shell = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "ulimit -Sn"]) { RedirectStandardOutput = true })!;
        var text = (await shell.StandardOutput.ReadToEndAsync()).Trim();
        await shell.WaitForExitAsync();

        var limit = text == "unlimited" ? OpenFileLimit.Fallback : long.Parse(text, CultureInfo.InvariantCulture);
        Assert.Equal(OpenFileLimit.ConnectionCap(limit), FleetOptions.MaxConnectionsPerProcess);
    }

    [Theory]
    [InlineData(20_000, 19_000)]
    [InlineData(1_048_576, 1_044_480)]
    [InlineData(1_024, 768)]
    public void The_reserve_is_a_twentieth_of_the_limit_between_256_and_4096(long limit, int cap) =>
        Assert.Equal(cap, OpenFileLimit.ConnectionCap(limit));

    [Fact]
    public void The_soft_limit_is_read_from_a_limits_file_and_unlimited_reads_as_none()
    {
        var file = Path.Combine(_dir, "limits");
        File.WriteAllText(file, "Limit                     Soft Limit           Hard Limit           Units\nMax open files            4096                 524288               files\n");
        Assert.Equal(4096, OpenFileLimit.Read(file));
        File.WriteAllText(file, "Max open files            unlimited            unlimited            files\n");
        Assert.Null(OpenFileLimit.Read(file));
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

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
