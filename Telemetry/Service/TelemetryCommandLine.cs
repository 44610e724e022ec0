using Microsoft.Extensions.Configuration;

namespace IotRealtime.Telemetry;

/// <summary>
/// Configuration sources of the executable, later ones winning: appsettings.json next to the binary, plain environment
/// variables (Telemetry__Kafka__BootstrapServers), IOTREALTIME_-prefixed ones, the command line (--Telemetry:Key=value).
/// </summary>
public static class TelemetryCommandLine
{
    public const string EnvironmentPrefix = "IOTREALTIME_";

    public const string Usage = """
        Usage:
          iotrealtime-telemetry [--Telemetry:Section:Key=value ...]

        Consumes MQTT telemetry from Kafka into PostgreSQL and/or InfluxDB, and serves /healthz, /metrics and the
        history API. Settings come from appsettings.json next to the binary, then environment variables
        (Telemetry__Kafka__BootstrapServers=... or IOTREALTIME_Telemetry__Kafka__BootstrapServers=...), then the
        command line (--Telemetry:Kafka:BootstrapServers=localhost:9092). See docs/telemetry.md for every key.
        """;

    /// <exception cref="FormatException">A malformed argument or appsettings.json.</exception>
    public static IConfiguration BuildConfiguration(string[] args) =>
        new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables()
            .AddEnvironmentVariables(EnvironmentPrefix)
            .AddCommandLine(args)
            .Build();
}
