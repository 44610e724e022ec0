using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>Queries and actions for the admin API. Everything returned is a snapshot; nothing here is on a hot path.</summary>
public sealed partial class MqttBroker
{
    /// <summary>Connected clients (CONNECT accepted and session attached), in no particular order.</summary>
    public IReadOnlyList<ClientSnapshot> GetClients()
    {
        var result = new List<ClientSnapshot>();
        foreach (var connection in _connections.Keys)
        {
            if (SnapshotClient(connection) is { } snapshot)
            {
                result.Add(snapshot);
            }
        }
        return result;
    }

    public ClientSnapshot? GetClient(string clientId) => FindSession(clientId) is { } session && OnlineConnection(session) is { } connection ? SnapshotClient(connection) : null;

    /// <summary>Disconnects a connected client (MQTT 5: DISCONNECT 0x98 administrative action). Its session stays; an abnormal close publishes its will. False when not connected.</summary>
    public bool DisconnectClient(string clientId)
    {
        if (FindSession(clientId) is not { } session || OnlineConnection(session) is not { } connection)
        {
            return false;
        }
        Log.AdminDisconnected(clientId);
        connection.RequestClose(MqttDisconnectReasonCode.AdministrativeAction);
        return true;
    }

    /// <summary>Sessions, online and offline.</summary>
    public IReadOnlyList<SessionSnapshot> GetSessions()
    {
        Session[] sessions;
        lock (_sessionsLock)
        {
            sessions = _sessions.Values.ToArray();
        }
        return sessions.Select(SnapshotSession).ToList();
    }

    public SessionSnapshot? GetSession(string clientId) => FindSession(clientId) is { } session ? SnapshotSession(session) : null;

    /// <summary>
    /// Ends a session now: a connected client is disconnected first (MQTT 5: 0x98), its subscriptions and queued messages
    /// go, and no will is published. False when there is no such session.
    /// </summary>
    public bool DeleteSession(string clientId)
    {
        Session? session;
        MqttConnection? connection;
        lock (_sessionsLock)
        {
            if (!_sessions.TryGetValue(clientId, out session))
            {
                return false;
            }
            RemoveSessionLocked(session);
            lock (session)
            {
                // detached first, so the closing connection finds the session no longer its own and leaves it alone
                connection = session.Connection;
                session.Connection = null;
                session.PendingWill = null;
                session.WillDueAt = null;
            }
        }
        if (connection is not null)
        {
            connection.Will = null;
            connection.RequestClose(MqttDisconnectReasonCode.AdministrativeAction);
        }
        Log.AdminDeletedSession(clientId);
        EndSession(session);
        return true;
    }

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
                Store?.RetainClear(message.Topic);
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

    Session? FindSession(string clientId)
    {
        lock (_sessionsLock)
        {
            return _sessions.GetValueOrDefault(clientId);
        }
    }

    static MqttConnection? OnlineConnection(Session session)
    {
        lock (session)
        {
            return session.Connection is { ConnectedAt: not null } connection ? connection : null;
        }
    }

    static ClientSnapshot? SnapshotClient(MqttConnection connection)
    {
        if (connection.Session is not { } session || connection.ConnectedAt is not { } connectedAt)
        {
            return null;
        }
        lock (session)
        {
            if (session.Connection != connection)
            {
                return null;
            }
            return new ClientSnapshot(session.ClientId, session.Identity.Username, connection.Info.Transport, connection.Info.RemoteEndPoint?.ToString(),
                ProtocolName(connection.ProtocolVersion), connectedAt, session.SubscriptionCount, session.PendingCount, session.InflightCount, session.ExpiryInterval);
        }
    }

    static SessionSnapshot SnapshotSession(Session session)
    {
        lock (session)
        {
            return new SessionSnapshot(session.ClientId, session.Identity.Username, session.Connection is not null, session.SubscriptionCount,
                session.Subscriptions.Keys.Order(StringComparer.Ordinal).ToList(), session.PendingCount, session.InflightCount, session.ExpiryInterval,
                session.ExpiresAt, session.PendingWill is not null);
        }
    }
}
