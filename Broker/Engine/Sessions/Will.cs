namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>A last will taken from CONNECT; published on abnormal close after its delay, or when the session ends.</summary>
internal sealed record Will(MqttMessage Message, uint DelaySeconds);
