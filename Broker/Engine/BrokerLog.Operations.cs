using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine;

/// <summary>Operations events (overload protection, drain, admin actions): ids 100–119.</summary>
internal sealed partial class BrokerLog
{
    [LoggerMessage(100, LogLevel.Information, "Client {ClientId} kept exceeding its publish limits; disconnecting (quota exceeded)")]
    public partial void PublishLimitExceeded(string? clientId);

    [LoggerMessage(101, LogLevel.Debug, "CONNECT from {Remote} refused: {Reason}")]
    public partial void ConnectRefused(string? remote, string reason);

    [LoggerMessage(102, LogLevel.Information, "Drain started: {Clients} connections closed over {WindowSeconds} s, server reference {ServerReference}")]
    public partial void DrainStarted(int clients, double windowSeconds, string? serverReference);

    [LoggerMessage(103, LogLevel.Information, "Drain finished: {Remaining} connections still open")]
    public partial void DrainFinished(int remaining);

    [LoggerMessage(104, LogLevel.Information, "Admin disconnected client {ClientId}")]
    public partial void AdminDisconnected(string clientId);

    [LoggerMessage(105, LogLevel.Information, "Admin deleted session {ClientId}")]
    public partial void AdminDeletedSession(string clientId);

    [LoggerMessage(106, LogLevel.Information, "Admin cleared {Count} retained messages matching {Filter}")]
    public partial void AdminClearedRetained(int count, string filter);
}
