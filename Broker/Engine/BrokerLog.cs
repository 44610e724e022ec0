using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine;

internal sealed partial class BrokerLog(ILogger logger)
{
    readonly ILogger _logger = logger;

    [LoggerMessage(1, LogLevel.Debug, "Client {ClientId} connected over {Transport} ({Version}), session present: {SessionPresent}")]
    public partial void ClientConnected(string clientId, string transport, string version, bool sessionPresent);

    [LoggerMessage(2, LogLevel.Debug, "Client {ClientId} disconnected (clean: {Clean})")]
    public partial void ClientDisconnected(string clientId, bool clean);

    [LoggerMessage(3, LogLevel.Warning, "Protocol error from {Remote} (client {ClientId}): {Reason}")]
    public partial void ProtocolError(string? remote, string? clientId, string reason);

    [LoggerMessage(4, LogLevel.Error, "Connection from {Remote} (client {ClientId}) failed")]
    public partial void ConnectionFailed(string? remote, string? clientId, Exception exception);

    [LoggerMessage(5, LogLevel.Warning, "Authentication failed for client {ClientId} user {Username} from {Remote}")]
    public partial void AuthenticationFailed(string clientId, string? username, string? remote);

    [LoggerMessage(6, LogLevel.Information, "Client {ClientId} denied publish to {Topic}")]
    public partial void PublishDenied(string clientId, string topic);

    [LoggerMessage(7, LogLevel.Information, "Client {ClientId} denied subscribe to {Filter}")]
    public partial void SubscribeDenied(string clientId, string filter);

    [LoggerMessage(8, LogLevel.Information, "Client {ClientId} missed its keep alive")]
    public partial void KeepAliveExpired(string? clientId);

    [LoggerMessage(30, LogLevel.Warning, "Client {ClientId} has not read what it was sent for {Seconds} s: disconnected")]
    public partial void WriteStalled(string? clientId, int seconds);

    [LoggerMessage(9, LogLevel.Information, "Session {ClientId} taken over by a new connection")]
    public partial void SessionTakenOver(string clientId);

    [LoggerMessage(10, LogLevel.Information, "Session {ClientId} expired")]
    public partial void SessionExpired(string clientId);

    [LoggerMessage(11, LogLevel.Error, "Accept stage failed for a publish from {ClientId}")]
    public partial void AcceptStageFailed(string? clientId, Exception exception);

    [LoggerMessage(12, LogLevel.Warning, "Client {ClientId} outbound queue full; policy {Policy}")]
    public partial void QueueOverflow(string clientId, QueueOverflowPolicy policy);

    [LoggerMessage(13, LogLevel.Error, "Housekeeping failed")]
    public partial void HousekeepingFailed(Exception exception);

    [LoggerMessage(14, LogLevel.Error, "Publishing the presence of {ClientId} to $SYS failed")]
    public partial void PresencePublishFailed(string clientId, Exception exception);
}
