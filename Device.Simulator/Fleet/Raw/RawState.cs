namespace IotRealtime.Device.Simulator.Fleet.Raw;

/// <summary>Where a raw device is in its life; one byte per device.</summary>
public enum RawState : byte
{
    /// <summary>Backing off until its due time.</summary>
    Waiting,

    /// <summary>In line for a connect token.</summary>
    Queued,

    /// <summary>TCP connect in progress.</summary>
    Connecting,

    /// <summary>CONNECT sent.</summary>
    AwaitConnAck,

    Online,

    /// <summary>Sent its --messages-per-device and disconnected.</summary>
    Done,
}
