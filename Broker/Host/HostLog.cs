using System.Net;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Host;

/// <summary>Host log events; ids are stable (1xxx listeners and lifecycle, 2xxx connections, 3xxx authentication).</summary>
internal static partial class HostLog
{
    [LoggerMessage(1000, LogLevel.Information, "Listening for {Transport} on {EndPoint}")]
    public static partial void Listening(ILogger logger, string transport, string endPoint);

    [LoggerMessage(1001, LogLevel.Information, "Broker started: {RuleCount} ACL rules (default {AclDefault}), anonymous {AllowAnonymous}, {UserCount} users, TLS {TlsEnabled}, data in {DataDirectory}")]
    public static partial void Started(ILogger logger, int ruleCount, string aclDefault, bool allowAnonymous, int userCount, bool tlsEnabled, string dataDirectory);

    [LoggerMessage(1002, LogLevel.Information, "Broker stopping")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(1003, LogLevel.Warning, "TLS certificate {Subject} expires {NotAfter:u}")]
    public static partial void CertificateExpiring(ILogger logger, string subject, DateTime notAfter);

    [LoggerMessage(2000, LogLevel.Error, "Connection {ConnectionId} over {Transport} from {RemoteEndPoint} failed")]
    public static partial void ConnectionFailed(ILogger logger, string connectionId, string transport, EndPoint? remoteEndPoint, Exception exception);

    [LoggerMessage(2001, LogLevel.Error, "A connection on the MQTT socket listener failed")]
    public static partial void SocketConnectionFailed(ILogger logger, Exception exception);

    [LoggerMessage(2002, LogLevel.Warning, "Accepting a connection failed ({Error}), {Count} times since the last such line; the listener goes on")]
    public static partial void AcceptFailed(ILogger logger, string error, long count, Exception exception);

    [LoggerMessage(1004, LogLevel.Information, "Listeners:MaxConnections unset: connections capped at {Max}, the open-file limit {Limit} less {Reserve} kept for the rest of the process")]
    public static partial void ConnectionCapFromOpenFiles(ILogger logger, long max, long limit, long reserve);

    [LoggerMessage(1005, LogLevel.Warning, "Listeners:MaxConnections ({Max}) is above what the open-file limit {Limit} leaves for connections ({Safe}): a flood can exhaust the process's file descriptors; raise the limit (ulimit -n) or lower the cap")]
    public static partial void ConnectionCapAboveOpenFiles(ILogger logger, long max, long limit, long safe);

    [LoggerMessage(2003, LogLevel.Warning, "{Count} connections closed at accept since the last such line: Listeners:MaxConnections ({Max}) reached")]
    public static partial void ConnectionsRefusedAtCap(ILogger logger, long count, long max);

    [LoggerMessage(2004, LogLevel.Error, "Handling a readable MQTT socket failed; the read loop goes on")]
    public static partial void ReadinessHandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(3000, LogLevel.Information, "Rejected anonymous client {ClientId} from {RemoteEndPoint}: anonymous access is off")]
    public static partial void AnonymousRejected(ILogger logger, string clientId, EndPoint? remoteEndPoint);

    [LoggerMessage(3001, LogLevel.Information, "Rejected client {ClientId} from {RemoteEndPoint}: bad username or password for '{Username}'")]
    public static partial void PasswordRejected(ILogger logger, string clientId, string username, EndPoint? remoteEndPoint);
}
