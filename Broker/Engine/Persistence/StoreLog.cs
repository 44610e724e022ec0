using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>The embedded store's log messages (category <see cref="EmbeddedBrokerStore"/>), shared by its parts.</summary>
internal static partial class StoreLog
{
    [LoggerMessage(101, LogLevel.Warning, "Store log {Path}: cut {Bytes} bytes at offset {Offset} ({Problem}); everything before it was replayed")]
    public static partial void TailCut(ILogger logger, string path, long offset, long bytes, string problem);

    [LoggerMessage(102, LogLevel.Information, "Store log {Path}: replayed {Records} records, {Sessions} sessions, {Retained} retained messages")]
    public static partial void Replayed(ILogger logger, string path, int records, int sessions, int retained);

    [LoggerMessage(103, LogLevel.Critical, "Store in {Directory} cannot write; acknowledgements that need it are refused")]
    public static partial void WriteFailed(ILogger logger, string directory, Exception exception);

    [LoggerMessage(104, LogLevel.Information, "Store compacted into generation {Generation} ({Bytes} bytes)")]
    public static partial void Compacted(ILogger logger, long generation, long bytes);

    [LoggerMessage(105, LogLevel.Error, "Store compaction in {Directory} failed; the current log stays in use")]
    public static partial void CompactionFailed(ILogger logger, string directory, Exception exception);

    [LoggerMessage(106, LogLevel.Critical, "Store log {Path} has no valid header: moved to {Aside} and starting with an empty store")]
    public static partial void UnreadableLog(ILogger logger, string path, string aside);

    [LoggerMessage(107, LogLevel.Warning, "Store in {Directory}: the part of a failed write could not be cut from the log; the next start cuts it")]
    public static partial void TailNotCut(ILogger logger, string directory, Exception exception);
}
