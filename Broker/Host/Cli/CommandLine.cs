using Microsoft.Extensions.Configuration;

namespace IotRealtime.Broker.Host.Cli;

/// <summary>Configuration sources of the executable, later ones winning: appsettings.json next to the binary, IOTRT_ environment variables, the command line.</summary>
public static class CommandLine
{
    public const string EnvironmentPrefix = "IOTRT_";

    /// <summary>Short switches for the settings people change most.</summary>
    public static readonly IReadOnlyDictionary<string, string> SwitchMappings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["--mqtt-port"] = "Listeners:MqttPort",
        ["--mqtts-port"] = "Listeners:MqttsPort",
        ["--http-port"] = "Listeners:HttpPort",
        ["--https-port"] = "Listeners:HttpsPort",
        ["--bind"] = "Listeners:BindAddress",
        ["--data-dir"] = "Data:Directory",
    };

    public const string Usage = """
        Usage:
          iotrealtime-broker [--mqtt-port N] [--mqtts-port N] [--http-port N] [--https-port N] [--bind ADDRESS] [--data-dir DIR] [--Section:Key=value ...]
          iotrealtime-broker passwd <file> <username> [--password <password>]
          iotrealtime-broker replay (--topic KAFKA_TOPIC | --filter MQTT_FILTER) [--from ...] [--to ...] [--limit N] [--into mqtt://host:port]  (replay --help)

        Settings come from appsettings.json next to the binary, then IOTRT_ environment variables
        (IOTRT_Listeners__MqttPort=1884), then the command line (--Listeners:MqttPort=1884).
        See docs/configuration.md for every key.
        """;

    /// <exception cref="FormatException">A malformed argument or appsettings.json.</exception>
    public static IConfiguration BuildConfiguration(string[] args) =>
        new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: false)
            .AddEnvironmentVariables(EnvironmentPrefix)
            .AddCommandLine(args, SwitchMappings.ToDictionary(StringComparer.OrdinalIgnoreCase))
            .Build();
}
