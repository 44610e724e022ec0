using System.Globalization;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>
/// The process's open-file limit (the soft RLIMIT_NOFILE, as /proc/self/limits shows it; the .NET runtime raises it
/// to the hard limit at start-up) and the connections one simulator process may open below it.
/// </summary>
public static class OpenFileLimit
{
    /// <summary>Used where the limit cannot be read (not Linux) or is unlimited: the 20,000 this project was sized on.</summary>
    public const long Fallback = 20_000;

    /// <summary>The soft open-file limit, or null where it cannot be read or is unlimited.</summary>
    public static long? Read(string limitsFile = "/proc/self/limits")
    {
        try
        {
            foreach (var line in File.ReadLines(limitsFile))
            {
                if (!line.StartsWith("Max open files", StringComparison.Ordinal)) continue;
                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var soft) ? soft : null;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    /// <summary>
    /// Descriptors kept for the runtime, the verifier, child pipes and connects in flight: a twentieth of the limit, at
    /// least 256 and at most 4096 (the broker keeps the same reserve).
    /// </summary>
    public static long Reserve(long limit) => Math.Clamp(limit / 20, 256, 4096);

    /// <summary>The connections one process may hold under <paramref name="limit"/> open files, at least 1.</summary>
    public static int ConnectionCap(long limit) => (int)Math.Clamp(limit - Reserve(limit), 1, int.MaxValue);

    /// <summary>The cap of this process: from its own limit, or from <see cref="Fallback"/> where that cannot be read.</summary>
    public static int ProcessCap() => ConnectionCap(Read() ?? Fallback);
}
