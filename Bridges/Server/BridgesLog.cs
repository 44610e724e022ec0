using IotRealtime.Bridges.Configuration;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Bridges;

static partial class BridgesLog
{
    [LoggerMessage(6000, LogLevel.Information, "Bridges at /sse and /ws: tokens {RequireToken}, history {MessagesPerTopic} messages per topic, SSE overflow {SseOverflow}, WebSocket overflow {WsOverflow}")]
    public static partial void Mapped(ILogger logger, bool requireToken, int messagesPerTopic, OverflowPolicy sseOverflow, OverflowPolicy wsOverflow);

    [LoggerMessage(6001, LogLevel.Information, "Bridges connected to broker {Server} as {ClientId}, subscribed to {Filters}")]
    public static partial void RemoteConnected(ILogger logger, string server, string clientId, string filters);

    [LoggerMessage(6002, LogLevel.Warning, "Bridges lost the broker connection: {Reason}; reconnecting")]
    public static partial void RemoteDisconnected(ILogger logger, string reason);

    [LoggerMessage(6090, LogLevel.Warning, "Bridges Kafka live feed: {Reason}; retrying")]
    public static partial void KafkaFeedError(ILogger logger, string reason);
}
