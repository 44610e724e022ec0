using IotRealtime.Broker.Host;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>Our broker started in-process on 127.0.0.1 with ephemeral ports, for the simulator's end-to-end tests.</summary>
internal static class InProcessBroker
{
    /// <param name="settings">Added to (or overriding) the defaults, e.g. ("Store:Durability", "None").</param>
    public static Task<BrokerHost> StartAsync(string dataDirectory, params (string Key, string? Value)[] settings)
    {
        var values = new Dictionary<string, string?>
        {
            ["Listeners:BindAddress"] = "127.0.0.1",
            ["Listeners:MqttPort"] = "0",
            ["Listeners:HttpPort"] = "0",
            ["Auth:AllowAnonymous"] = "true",
            ["Admin:ShutdownDrainSeconds"] = "0",
            ["Data:Directory"] = dataDirectory,
            ["Broker:SysInterval"] = "0",
        };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }
        return BrokerHost.StartAsync(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
    }
}
