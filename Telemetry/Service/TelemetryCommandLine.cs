using Microsoft.Extensions.Configuration;

namespace IotRealtime.Telemetry;

/// <summary>
/// Configuration sources of the executable, later ones winning: appsettings.json next to the binary, plain environment
/// variables (Telemetry__Kafka__BootstrapServers), IOTRT_- (as the broker) and IOTREALTIME_-prefixed ones, the command
/// line (--Telemetry:Key=value).
/// </summary>
public static class TelemetryCommandLine
{
    public const string EnvironmentPrefix = "IOTREALTIME_";

    /// <summary>The broker's prefix, accepted too so one environment file can configure both.</summary>
    public const string BrokerEnvironmentPrefix = "IOTRT_";

    public const string Usage = """
        Usage:
          iotrealtime-telemetry [--Telemetry:Section:Key=value ...]

        Consumes MQTT telemetry from Kafka into PostgreSQL and/or InfluxDB, and serves /healthz, /metrics and the
        history API. Settings come from appsettings.json next to the binary, then environment variables
        (Telemetry__Kafka__BootstrapServers=..., IOTRT_Telemetry__... or IOTREALTIME_Telemetry__...), then the
        command line (--Telemetry:Kafka:BootstrapServers=localhost:9092). See docs/telemetry.md for every key.
        """;

    /// <exception cref="FormatException">A malformed argument or appsettings.json.</exception>
    public static IConfiguration BuildConfiguration(string[] args) =>
        new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables()
            .AddEnvironmentVariables(BrokerEnvironmentPrefix)
            .AddEnvironmentVariables(EnvironmentPrefix)
            .AddCommandLine(args)
            .Build();
}
