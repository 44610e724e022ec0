using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Protocol;
using SessionSnapshot = IotRealtime.Broker.Engine.Operations.SessionSnapshot;

namespace IotRealtime.Broker.Engine;

/// <summary>Queries and actions for the admin API. Everything returned is a snapshot; nothing here is on a hot path.</summary>
public sealed partial class MqttBroker
{
    /// <summary>Connected clients (CONNECT accepted and session attached), in no particular order.</summary>
    public IReadOnlyList<ClientSnapshot> GetClients()
    {
        var result = new List<ClientSnapshot>();
        foreach (var connection in _admission.Connections)
        {
            if (SnapshotClient(connection) is { } snapshot)
            {
                result.Add(snapshot);
            }
        }
        return result;
    }

    public ClientSnapshot? GetClient(string clientId) => _sessions.Find(clientId) is { } session && OnlineConnection(session) is { } connection ? SnapshotClient(connection) : null;

    /// <summary>Disconnects a connected client (MQTT 5: DISCONNECT 0x98 administrative action). Its session stays; an abnormal close publishes its will. False when not connected.</summary>
    public bool DisconnectClient(string clientId)
    {
        if (_sessions.Find(clientId) is not { } session || OnlineConnection(session) is not { } connection)
        {
            return false;
        }
        Log.AdminDisconnected(clientId);
        connection.RequestClose(MqttDisconnectReasonCode.AdministrativeAction);
        return true;
    }

    /// <summary>Sessions, online and offline.</summary>
    public IReadOnlyList<SessionSnapshot> GetSessions() => _sessions.ToArray().Select(SnapshotSession).ToList();

    public SessionSnapshot? GetSession(string clientId) => _sessions.Find(clientId) is { } session ? SnapshotSession(session) : null;

    /// <summary>
    /// Ends a session now: a connected client is disconnected first (MQTT 5: 0x98), its subscriptions and queued messages
    /// go, and no will is published. False when there is no such session.
    /// </summary>
    public bool DeleteSession(string clientId) => _lifecycle.Delete(clientId);

    /// <summary>Retained messages whose topic matches <paramref name="filter"/> (a topic filter; "#" does not match $ topics).</summary>
    public IReadOnlyList<RetainedSnapshot> GetRetained(string filter = "#")
    {
        ThrowIfInvalidFilter(filter);
        return Retained.Match(filter, Time.GetUtcNow())
            .OrderBy(m => m.Topic, StringComparer.Ordinal)
            .Select(m => new RetainedSnapshot(m.Topic, (int)m.QoS, m.Payload.Length, m.ReceivedAt, m.ExpiresAt, m.ContentType,
                m.PayloadFormat == MqttPayloadFormatIndicator.CharacterData || TopicValidation.IsValidMqttUtf8(m.Payload.Span), m.Payload))
            .ToList();
    }

    /// <summary>Removes the retained messages matching <paramref name="filter"/> (a plain topic removes just that topic). Returns how many went.</summary>
    public int ClearRetained(string filter)
    {
        ThrowIfInvalidFilter(filter);
        var removed = 0;
        foreach (var message in Retained.Match(filter, Time.GetUtcNow()))
        {
            if (Retained.Remove(message.Topic))
            {
                _journal.RetainClear(message.Topic);
                removed++;
            }
        }
        Log.AdminClearedRetained(removed, filter);
        return removed;
    }

    static void ThrowIfInvalidFilter(string filter)
    {
        if (!TopicValidation.IsValidTopicFilter(filter) || filter.StartsWith("$share/", StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{filter}' is not a valid topic filter.", nameof(filter));
        }
    }

    static MqttConnection? OnlineConnection(Session session) =>
        session.Read(0, static (s, _) => s.Connection) is { ConnectedAt: not null } connection ? connection : null;

    static ClientSnapshot? SnapshotClient(MqttConnection connection)
    {
        if (connection.Session is not { } session || connection.ConnectedAt is not { } connectedAt)
        {
            return null;
        }
        return session.Read((connection, connectedAt), static (s, c) => s.Connection != c.connection ? null
            : new ClientSnapshot(s.ClientId, s.Identity.Username, c.connection.Info.Transport, c.connection.Info.RemoteEndPoint?.ToString(),
                SysPublisher.ProtocolName(c.connection.ProtocolVersion), c.connectedAt, s.SubscriptionCount, s.PendingCount, s.InflightCount, s.ExpiryInterval));
    }

    static SessionSnapshot SnapshotSession(Session session) =>
        session.Read(0, static (s, _) => new SessionSnapshot(s.ClientId, s.Identity.Username, s.Connection is not null, s.SubscriptionCount,
            s.Subscriptions.Keys.Order(StringComparer.Ordinal).ToList(), s.PendingCount, s.InflightCount, s.ExpiryInterval, s.ExpiresAt, s.PendingWill is not null));

    // ---------------------------------------------------------------- queue totals, for scrapes

    /// <summary>Messages queued (not yet in flight) across all sessions. Walks every session: for scrapes, not hot paths.</summary>
    public long QueueDepthTotal() => SumOverSessions(static s => s.PendingCount);

    /// <summary>Bytes queued for delivery across all sessions, as each session's <see cref="BrokerOptions.MaxQueuedBytes"/> budget counts them.</summary>
    public long QueuedBytesTotal() => SumOverSessions(static s => s.PendingBytes);

    /// <summary>Deliveries sent and awaiting acknowledgement across all sessions. Walks every session.</summary>
    public long InflightTotal() => SumOverSessions(static s => s.InflightCount);

    long SumOverSessions(Func<Session, long> count)
    {
        long total = 0;
        foreach (var session in _sessions.ToArray())
        {
            total += session.Read(count, static (s, count) => count(s));
        }
        return total;
    }
}
