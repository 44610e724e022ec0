using System.Diagnostics;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// Locates the outside clients the interop tests drive. A missing one fails the test with how to get it:
/// the test command installs them, so they are never skipped.
/// </summary>
public static class ExternalTools
{
    public const string Python = "/usr/bin/python3";

    private static readonly Lazy<string?> PahoProblem = new(CheckPaho);

    /// <summary>The full path of <paramref name="executable"/> on PATH; throws naming the Debian package otherwise.</summary>
    public static string Require(string executable, string debianPackage)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        foreach (var directory in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, executable);
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(Missing(executable, debianPackage));
    }

    public static string MosquittoPub => Require("mosquitto_pub", "mosquitto-clients");

    public static string MosquittoSub => Require("mosquitto_sub", "mosquitto-clients");

    /// <summary>/usr/bin/python3 with paho-mqtt importable; throws naming the Debian packages otherwise.</summary>
    public static string PythonWithPaho
    {
        get
        {
            if (PahoProblem.Value is { } problem) throw new InvalidOperationException(problem);
            return Python;
        }
    }

    /// <summary>The path of a script from Interop/scripts, copied next to the test assembly.</summary>
    public static string Script(string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Interop", "scripts", name);
        if (!File.Exists(path)) throw new FileNotFoundException($"Interop script {name} was not copied to the output directory.", path);
        return path;
    }

    private static string Missing(string what, string debianPackage) =>
        $"{what} is not installed (Debian package {debianPackage}). Run the test command `bash scripts/test.sh`, which installs it, or `apt-get install -y {debianPackage}`.";

    private static string? CheckPaho()
    {
        if (!File.Exists(Python)) return Missing(Python, "python3");
        using var process = Process.Start(new ProcessStartInfo(Python, ["-c", "import paho.mqtt.client"])
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? null : Missing("paho-mqtt for /usr/bin/python3", "python3-paho-mqtt") + "\n" + error;
    }
}
