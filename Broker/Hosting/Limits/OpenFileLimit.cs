using System.Globalization;

namespace IotRealtime.Hosting.Limits;

/// <summary>
/// The process's open-file limit (the soft RLIMIT_NOFILE, from /proc/self/limits; the .NET runtime raises it to the hard
/// limit at start-up) and the connection cap that keeps a reserve below it, for the broker and the simulator alike. A .NET
/// process that runs out of descriptors does not just fail accepts: it can end with "Out of memory", so connections must
/// be refused (or not opened) before the limit is reached.
/// </summary>
public static class OpenFileLimit
{
    /// <summary>The soft open-file limit, or null where it cannot be read (not Linux) or is unlimited.</summary>
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
    /// Descriptors kept for everything but client connections (runtime, listeners, store files, Kafka and cluster
    /// sockets, accepts or connects in flight, child pipes): a twentieth of the limit, at least 256 and at most 4096.
    /// </summary>
    public static long Reserve(long limit) => Math.Clamp(limit / 20, 256, 4096);

    /// <summary>The connection cap for an open-file limit: the limit less <see cref="Reserve"/>, at least 1.</summary>
    public static long ConnectionCap(long limit) => Math.Max(1, limit - Reserve(limit));
}
