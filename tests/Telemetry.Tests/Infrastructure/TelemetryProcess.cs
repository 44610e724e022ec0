using System.Diagnostics;
using System.Text;

namespace IotRealtime.Telemetry.Tests.Infrastructure;

/// <summary>The built <c>iotrealtime-telemetry</c> executable run as a process of its own, configured by command-line arguments.</summary>
public sealed class TelemetryProcess : IAsyncDisposable
{
    readonly Process _process;
    readonly StringBuilder _output = new();

    TelemetryProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    /// <summary>The executable the Telemetry project built next to this test build (same configuration).</summary>
    public static string ExecutablePath
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "IotRealtime.sln"))) directory = directory.Parent;
            if (directory is null) throw new InvalidOperationException($"No IotRealtime.sln above {AppContext.BaseDirectory}.");
            // The test assembly sits in tests/Telemetry.Tests/bin/<Configuration>/<tfm>/.
            var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var configuration = tfm.Parent!.Name;
            var path = Path.Combine(directory.FullName, "Telemetry", "Service", "bin", configuration, tfm.Name, "iotrealtime-telemetry");
            return File.Exists(path) ? path : throw new InvalidOperationException($"{path} is missing: build Telemetry/Service first.");
        }
    }

    public static TelemetryProcess Start(IEnumerable<KeyValuePair<string, string?>> settings)
    {
        var start = new ProcessStartInfo(ExecutablePath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in settings) start.ArgumentList.Add($"--{key}={value}");
        return new TelemetryProcess(Process.Start(start) ?? throw new InvalidOperationException("Cannot start iotrealtime-telemetry."));
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"iotrealtime-telemetry did not exit within {timeout.TotalSeconds:0} s. Output:\n{Output}");
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
