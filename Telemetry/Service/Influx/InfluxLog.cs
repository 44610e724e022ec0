using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry.Influx;

static partial class InfluxLog
{
    [LoggerMessage(7400, LogLevel.Information, "InfluxDB sink ready: v{Version} at {Url}, {Target}, measurement '{Measurement}'")]
    public static partial void Ready(ILogger logger, int version, string url, string target, string measurement);

    [LoggerMessage(7401, LogLevel.Warning, "InfluxDB write failed ({Reason}); attempt {Attempt}, retrying in {DelayMs} ms")]
    public static partial void Retrying(ILogger logger, string reason, int attempt, long delayMs);

    [LoggerMessage(7402, LogLevel.Warning, "InfluxDB refused a line ({Error}); it is parked in '{ParkedMeasurement}': {Line}")]
    public static partial void LineRefused(ILogger logger, string error, string parkedMeasurement, string line);

    [LoggerMessage(7403, LogLevel.Warning, "A reading cannot be written as line protocol (device '{Device}', metric '{Metric}': {Reason}); it is parked")]
    public static partial void ReadingRejected(ILogger logger, string device, string metric, string reason);

    [LoggerMessage(7404, LogLevel.Error, "InfluxDB refused the parked records too ({Error}); they exist only in this log: {Lines}")]
    public static partial void ParkingRefused(ILogger logger, string error, string lines);

    [LoggerMessage(7405, LogLevel.Information, "InfluxDB offsets for group '{ConsumerGroup}': {Offsets}")]
    public static partial void OffsetsLoaded(ILogger logger, string consumerGroup, string offsets);

    [LoggerMessage(7406, LogLevel.Debug, "Skipped a batch of {Readings} readings whose offsets InfluxDB already holds")]
    public static partial void SkippedStoredBatch(ILogger logger, int readings);
}
