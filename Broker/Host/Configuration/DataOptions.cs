namespace IotRealtime.Broker.Host.Configuration;

/// <summary>Where durable state lives, bound from the "Data" configuration section.</summary>
public sealed class DataOptions
{
    public const string Section = "Data";

    /// <summary>Relative paths resolve against the working directory, as Mosquitto's persistence_location does.</summary>
    public string Directory { get; set; } = "./data";
}
