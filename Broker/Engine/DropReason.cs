namespace IotRealtime.Broker.Engine;

/// <summary>Why a message was not delivered to a subscriber; counted per reason.</summary>
public enum DropReason
{
    QueueFull,
    Expired,
    TooLargeForClient,
    OfflineQos0,
}
