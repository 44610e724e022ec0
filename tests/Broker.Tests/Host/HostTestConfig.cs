using Microsoft.Extensions.Configuration;

namespace IotRealtime.Broker.Tests.Host;

/// <summary>Configuration for a host on 127.0.0.1 with every port ephemeral and a private data directory.</summary>
static class HostTestConfig
{
    public static IConfiguration Build(string dataDirectory, params (string Key, string? Value)[] settings)
    {
        var values = new Dictionary<string, string?>
        {
            ["Listeners:BindAddress"] = "127.0.0.1",
            ["Listeners:MqttPort"] = "0",
            ["Listeners:MqttsPort"] = "0",
            ["Listeners:HttpPort"] = "0",
            ["Listeners:HttpsPort"] = "0",
            ["Data:Directory"] = dataDirectory,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings) values[key] = value;
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }
}
