using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry;

static partial class TelemetryLog
{
    [LoggerMessage(7000, LogLevel.Information, "Telemetry HTTP listening on {Endpoint}; sinks: {Sinks}")]
    public static partial void Started(ILogger logger, string endpoint, string sinks);

    [LoggerMessage(7001, LogLevel.Information, "Telemetry stopping")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(7002, LogLevel.Information, "Consuming {Topics} as group {GroupId} from {BootstrapServers}")]
    public static partial void Consuming(ILogger logger, string topics, string groupId, string bootstrapServers);

    [LoggerMessage(7003, LogLevel.Information, "Partitions assigned: {Positions}")]
    public static partial void Assigned(ILogger logger, string positions);

    [LoggerMessage(7004, LogLevel.Information, "Partitions revoked: {Partitions}")]
    public static partial void Revoked(ILogger logger, string partitions);

    [LoggerMessage(7005, LogLevel.Warning, "Sink {Sink} write of {Readings} readings failed (attempt {Attempt}, retrying in {DelayMs} ms): {Reason}")]
    public static partial void WriteFailed(ILogger logger, string sink, int readings, int attempt, int delayMs, string reason);

    [LoggerMessage(7006, LogLevel.Information, "Sink {Sink} recovered after {Attempts} failed attempts")]
    public static partial void SinkRecovered(ILogger logger, string sink, int attempts);

    [LoggerMessage(7007, LogLevel.Information, "Consumption paused: sink {Sink} is behind ({Pending} batches pending)")]
    public static partial void Paused(ILogger logger, string sink, int pending);

    [LoggerMessage(7008, LogLevel.Information, "Consumption resumed after {PausedMs} ms")]
    public static partial void Resumed(ILogger logger, long pausedMs);

    [LoggerMessage(7009, LogLevel.Debug, "Kafka commit failed (advisory; the sinks hold the offsets): {Reason}")]
    public static partial void CommitFailed(ILogger logger, string reason);

    [LoggerMessage(7010, LogLevel.Warning, "Kafka consumer error {Code}: {Reason}")]
    public static partial void ConsumerError(ILogger logger, string code, string reason);

    [LoggerMessage(7011, LogLevel.Warning, "Loading offsets from sink {Sink} failed (attempt {Attempt}): {Reason}")]
    public static partial void LoadOffsetsFailed(ILogger logger, string sink, int attempt, string reason);

    [LoggerMessage(7012, LogLevel.Critical, "Fault injection: killing the process after stored batch {Batch}, before the Kafka commit")]
    public static partial void FaultExit(ILogger logger, int batch);

    [LoggerMessage(7013, LogLevel.Error, "Telemetry consumer stopped unexpectedly")]
    public static partial void ConsumerCrashed(ILogger logger, Exception exception);

    [LoggerMessage(7014, LogLevel.Information, "PostgreSQL maintenance: partitions {Created} created, {Dropped} dropped")]
    public static partial void Maintenance(ILogger logger, int created, int dropped);

    [LoggerMessage(7015, LogLevel.Warning, "PostgreSQL maintenance failed: {Reason}")]
    public static partial void MaintenanceFailed(ILogger logger, string reason);

    [LoggerMessage(7017, LogLevel.Debug, "A record of {Partition} at {Offset} was fetched while paused; seeking back to it")]
    public static partial void SeekBack(ILogger logger, string partition, long offset);

    [LoggerMessage(7016, LogLevel.Warning, "Sink {Sink} initialization failed (attempt {Attempt}): {Reason}")]
    public static partial void InitializeFailed(ILogger logger, string sink, int attempt, string reason);
}
