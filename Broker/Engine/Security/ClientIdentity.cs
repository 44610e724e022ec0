namespace IotRealtime.Broker.Engine.Security;

/// <summary>Who a connection is, after authentication: the MQTT client id and the authenticated user (username or certificate subject).</summary>
public sealed record ClientIdentity(string ClientId, string? Username);
