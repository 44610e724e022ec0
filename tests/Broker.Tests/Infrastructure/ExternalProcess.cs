using System.Diagnostics;
using System.Text;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// A child process (mosquitto_pub, mosquitto_sub, a python script) whose stdout and stderr lines are captured.
/// Disposing kills it and only its own process tree, by its PID.
/// </summary>
public sealed class ExternalProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ExternalProcess(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
    }

    public string CommandLine { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>A snapshot of every line read so far from stdout and stderr, in arrival order.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate) return [.. _lines];
        }
    }

    public string Output => string.Join('\n', Lines);

    public static ExternalProcess Start(string fileName, params IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        info.Environment["PYTHONUNBUFFERED"] = "1";

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var commandLine = fileName + " " + string.Join(' ', info.ArgumentList.Select(a => a.Contains(' ') ? $"'{a}'" : a));
        var result = new ExternalProcess(process, commandLine);
        process.OutputDataReceived += (_, e) => result.OnLine(e.Data, result._stdoutClosed);
        process.ErrorDataReceived += (_, e) => result.OnLine(e.Data, result._stderrClosed);
        if (!process.Start()) throw new InvalidOperationException($"Could not start {commandLine}.");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return result;
    }

    /// <summary>Waits for a line matching <paramref name="match"/> and returns it; fails early if the process ends without one.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what = "a matching line")
    {
        var deadline = DateTime.UtcNow + timeout;
        var next = 0;
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                for (; next < _lines.Count; next++)
                {
                    if (match(_lines[next])) return _lines[next];
                }
                changed = _changed.Task;
            }

            if (_stdoutClosed.Task.IsCompleted && _stderrClosed.Task.IsCompleted && _process.HasExited)
            {
                lock (_gate)
                {
                    if (next < _lines.Count) continue;
                }
                throw new InvalidOperationException($"{CommandLine} exited with code {_process.ExitCode} before printing {what}. Output:\n{Output}");
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero) throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {what} from {CommandLine}. Output:\n{Output}");
            await Task.WhenAny(changed, Task.Delay(remaining));
        }
    }

    /// <summary>Waits for the process to end and its output to be read; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await Task.WhenAll(_process.WaitForExitAsync(), _stdoutClosed.Task, _stderrClosed.Task).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{CommandLine} did not exit within {timeout.TotalSeconds:0.#} s. Output:\n{Output}");
        }
        return _process.ExitCode;
    }

    /// <summary>Sends SIGKILL to this process (and its children only), as a crash or power loss would end it.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It ended on its own between the check and the kill.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            // Nothing more we may do: we never signal processes we did not start.
        }
        _process.Dispose();
    }

    private void OnLine(string? line, TaskCompletionSource closed)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            if (line is null) closed.TrySetResult();
            else _lines.Add(line);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }
}
