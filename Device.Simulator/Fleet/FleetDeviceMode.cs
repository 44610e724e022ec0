namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>How a fleet's devices are simulated (<c>--mode</c>).</summary>
public enum FleetDeviceMode
{
    /// <summary>Raw wherever it covers the options, MQTTnet otherwise.</summary>
    Auto,

    /// <summary>The simulator's own MQTT 3.1.1 sockets on one epoll thread (<see cref="Raw.RawFleet"/>).</summary>
    Raw,

    /// <summary>One MQTTnet client per device (<see cref="FleetDevice"/>).</summary>
    MqttNet,
}
