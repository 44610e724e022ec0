using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Fleet;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Security;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Bridges.Remote;

/// <summary>
/// The standalone bridges' view of a remote broker: one MQTT connection that subscribes to the configured filters
/// (their messages feed the history with positions of this process's own epoch), to the broker's presence topics
/// ($SYS/broker/clients/+/connected|disconnected, for $presence and the fleet), and publishes on browsers' behalf.
/// The remote broker's ACL for this connection's user bounds what browsers can reach; the bridges add no ACL of their own.
/// </summary>
public sealed class RemoteBrokerLink : IBrokerLink, IAsyncDisposable
{
    const string PresencePrefix = "$SYS/broker/clients/";

    readonly UpstreamOptions _options;
    readonly FeedHub _hub;
    readonly TimeProvider _time;
    readonly ILogger _logger;
    readonly IMqttClient _client;
    readonly ConcurrentDictionary<string, FleetClient> _online = new(StringComparer.Ordinal);
    readonly Lock _presenceLock = new();
    readonly CancellationTokenSource _stop = new();
    Action<PresenceEvent>[] _presence = [];
    Task? _connectLoop;
    long _received;
    readonly bool _feedFromMqtt;
    int _disposed;

    /// <param name="feedFromMqtt">False when the live feed comes from Kafka: then only presence is taken from MQTT.</param>
    public RemoteBrokerLink(UpstreamOptions options, FeedHub hub, TimeProvider time, ILogger<RemoteBrokerLink> logger, bool feedFromMqtt = true)
    {
        _feedFromMqtt = feedFromMqtt;
        _options = options;
        _hub = hub;
        _time = time;
        _logger = logger;
        ClientId = options.ClientId ?? "iotrealtime-bridges-" + Guid.NewGuid().ToString("N")[..8];
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += e =>
        {
            OnMessage(e.ApplicationMessage);
            return Task.CompletedTask;
        };
    }

    public string ClientId { get; }

    public bool IsConnected => _client.IsConnected;

    public IMqttAuthorizer Authorizer { get; } = new AllowAllAuthorizer();

    /// <summary>Set by this process's own POST /api/drain.</summary>
    public bool IsDraining { get; set; }

    public TimeSpan DrainWindow { get; set; }

    public long MessagesReceived => Interlocked.Read(ref _received);

    public IReadOnlyList<FleetClient> GetOnline() => _online.Values.ToList();

    /// <summary>Connects (retrying with backoff until connected or disposed) and keeps reconnecting in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await ConnectOnceAsync(cancellationToken).ConfigureAwait(false);
        _connectLoop = KeepConnectedAsync(_stop.Token);
    }

    async Task KeepConnectedAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(500);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), _time, cancellationToken).ConfigureAwait(false);
                if (_client.IsConnected)
                {
                    delay = TimeSpan.FromMilliseconds(500);
                    continue;
                }
                BridgesLog.RemoteDisconnected(_logger, "not connected");
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                await ConnectOnceAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or OperationCanceledException)
            {
                BridgesLog.RemoteDisconnected(_logger, e.Message);
            }
        }
    }

    async Task ConnectOnceAsync(CancellationToken cancellationToken)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(_options.Host, _options.Port)
            .WithClientId(ClientId)
            .WithCleanSession()
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(_options.KeepAliveSeconds))
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithTimeout(TimeSpan.FromSeconds(10));
        if (_options.Username is not null) builder = builder.WithCredentials(_options.Username, _options.Password);
        if (_options.UseTls) builder = builder.WithTlsOptions(o => o.UseTls());
        var result = await _client.ConnectAsync(builder.Build(), cancellationToken).ConfigureAwait(false);
        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new InvalidOperationException($"the broker refused the connection: {result.ResultCode} {result.ReasonString}");
        }
        var subscribe = new MqttClientSubscribeOptionsBuilder();
        foreach (var filter in _feedFromMqtt ? _options.Filters : []) subscribe.WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce);
        subscribe.WithTopicFilter(PresencePrefix + "+/connected", MqttQualityOfServiceLevel.AtMostOnce);
        subscribe.WithTopicFilter(PresencePrefix + "+/disconnected", MqttQualityOfServiceLevel.AtMostOnce);
        await _client.SubscribeAsync(subscribe.Build(), cancellationToken).ConfigureAwait(false);
        BridgesLog.RemoteConnected(_logger, $"{_options.Host}:{_options.Port}", ClientId, string.Join(",", _options.Filters));
    }

    void OnMessage(MqttApplicationMessage message)
    {
        var topic = message.Topic;
        if (topic.StartsWith(PresencePrefix, StringComparison.Ordinal) && OnPresence(topic, message.Payload))
        {
            return;
        }
        if (!_feedFromMqtt) return;
        Interlocked.Increment(ref _received);
        _hub.Append(topic, message.Payload.ToArray(), (int)message.QualityOfServiceLevel, message.Retain, _time.GetUtcNow());
    }

    bool OnPresence(string topic, ReadOnlySequence<byte> payload)
    {
        var kind = topic.EndsWith("/connected", StringComparison.Ordinal) ? PresenceEventKind.Connected
            : topic.EndsWith("/disconnected", StringComparison.Ordinal) ? PresenceEventKind.Disconnected
            : (PresenceEventKind?)null;
        if (kind is null) return false;
        try
        {
            var reader = new Utf8JsonReader(payload);
            using var json = JsonDocument.ParseValue(ref reader);
            var root = json.RootElement;
            var clientId = root.GetProperty("clientId").GetString()!;
            var at = root.TryGetProperty("at", out var atElement) && atElement.TryGetDateTimeOffset(out var parsed) ? parsed : _time.GetUtcNow();
            var online = root.TryGetProperty("online", out var onlineElement) && onlineElement.ValueKind == JsonValueKind.True;
            var e = new PresenceEvent(kind.Value, clientId, at)
            {
                Username = root.TryGetProperty("username", out var u) ? u.GetString() : null,
                Transport = root.TryGetProperty("transport", out var t) ? t.GetString() : null,
                TakenOver = kind == PresenceEventKind.Disconnected && online,
            };
            if (kind == PresenceEventKind.Connected) _online[clientId] = new FleetClient(clientId, e.Username, at, e.Transport);
            else if (!online) _online.TryRemove(clientId, out _);
            foreach (var subscriber in Volatile.Read(ref _presence)) subscriber(e);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            // not a presence payload this version understands: ignore it
        }
        return true;
    }

    public IDisposable SubscribePresence(Action<PresenceEvent> onEvent)
    {
        lock (_presenceLock) _presence = [.. _presence, onEvent];
        return new Unsubscriber(this, onEvent);
    }

    public async ValueTask<PublishOutcome> PublishAsync(ClientIdentity publisher, string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, CancellationToken cancellationToken)
    {
        if (!_client.IsConnected) return PublishOutcome.Refused("the bridges are not connected to the broker");
        var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload.ToArray())
            .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)qos).WithRetainFlag(retain).Build();
        try
        {
            var result = await _client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
            return result.IsSuccess ? PublishOutcome.Accepted : PublishOutcome.Refused(result.ReasonCode == MqttClientPublishReasonCode.NotAuthorized ? "not authorized" : result.ReasonString ?? result.ReasonCode.ToString());
        }
        catch (MQTTnet.Exceptions.MqttCommunicationException e)
        {
            return PublishOutcome.Refused("broker connection lost: " + e.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // the container may hold it under two service types
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_connectLoop is not null) await _connectLoop.ConfigureAwait(false);
        if (_client.IsConnected)
        {
            try
            {
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build()).ConfigureAwait(false);
            }
            catch (MQTTnet.Exceptions.MqttCommunicationException)
            {
            }
        }
        _client.Dispose();
        _stop.Dispose();
    }

    sealed class Unsubscriber(RemoteBrokerLink link, Action<PresenceEvent> handler) : IDisposable
    {
        public void Dispose()
        {
            lock (link._presenceLock) link._presence = link._presence.Where(h => h != handler).ToArray();
        }
    }
}
