namespace IotRealtime.Telemetry.Influx;

/// <summary>
/// InfluxDB could not take a write or answer a query: <see cref="Transient"/> when it stayed unreachable or kept
/// answering 5xx/429 for the whole retry window (trying later can succeed), otherwise a refusal that retrying cannot
/// fix (wrong credentials, missing database or bucket) and whose message says which setting to check.
/// </summary>
public sealed class InfluxException(string message, bool transient, int? statusCode = null, Exception? inner = null)
    : Exception(message, inner)
{
    public bool Transient { get; } = transient;

    /// <summary>The HTTP status InfluxDB answered with; null when no answer came.</summary>
    public int? StatusCode { get; } = statusCode;
}
