namespace IotRealtime.Telemetry.Configuration;

/// <summary>The configuration is unusable; <see cref="Errors"/> holds one line per problem, each naming its key.</summary>
public sealed class TelemetryConfigurationException : Exception
{
    public TelemetryConfigurationException(IReadOnlyList<string> errors)
        : base("Invalid telemetry configuration:" + string.Concat(errors.Select(e => Environment.NewLine + "  - " + e)))
    {
        Errors = errors;
    }

    public IReadOnlyList<string> Errors { get; }
}
