using IotRealtime.Broker.Engine.Security;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// The only owner of session lookup: every session by client id, and which of them are offline (for housekeeping).
/// Attach (new, resumed or taken over), detach, removal and restore happen under one lock, so a client id has at most
/// one session and a session's start and end reach the journal in the order they happen. What follows from a change
/// (closing a previous connection, publishing a will, ending a session) is the caller's, outside the lock.
/// </summary>
internal sealed class SessionRegistry(SessionJournal journal, LocalDelivery local)
{
    readonly Lock _lock = new();
    readonly Dictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    readonly HashSet<Session> _offline = new();

    /// <summary>What an attach did: the session and whether it was resumed; the connection it took the session from,
    /// the session it ended (clean start over an existing one) and the will that is due because of it, if any.</summary>
    public readonly record struct Attached(Session Session, bool Present, MqttConnection? Previous, Session? Ended, Will? DueWill);

    /// <summary>How this registry's sessions are delivered to.</summary>
    public LocalDelivery Local => local;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _sessions.Count;
            }
        }
    }

    public Session? Find(string clientId)
    {
        lock (_lock)
        {
            return _sessions.GetValueOrDefault(clientId);
        }
    }

    /// <summary>Every session, online and offline, at this moment.</summary>
    public Session[] ToArray()
    {
        lock (_lock)
        {
            return _sessions.Values.ToArray();
        }
    }

    /// <summary>Binds a new connection to its session: resumes it, or starts a new one (ending the old). Takes over a live connection.</summary>
    public Attached Attach(MqttConnection connection, string clientId, ClientIdentity identity, bool cleanStart, uint expiryInterval)
    {
        MqttConnection? previous = null;
        Will? previousWill = null;
        Session? ended = null;
        Session session;
        bool present;
        lock (_lock)
        {
            if (_sessions.TryGetValue(clientId, out var existing))
            {
                (previous, previousWill) = existing.Release();
                if (previous is not null)
                {
                    previousWill ??= previous.Will;
                    previous.Will = null;
                }
            }
            if (existing is not null && !cleanStart)
            {
                session = existing;
                present = true;
                if (previousWill is not { DelaySeconds: 0 })
                {
                    // only a will the old connection left with no delay is due now (it ended abnormally); a delayed one is cancelled
                    previousWill = null;
                }
            }
            else
            {
                if (existing is not null)
                {
                    RemoveLocked(existing);
                    ended = existing;
                }
                session = new Session(clientId) { Local = local };
                _sessions[clientId] = session;
                present = false;
            }
            _offline.Remove(session);
            // recorded under this lock: a session's start and end reach the log in the order they happen
            session.Attach(connection, identity, expiryInterval, journal);
        }
        return new Attached(session, present, previous, ended, previousWill);
    }

    /// <summary>
    /// Unbinds a closed connection from its session (see <see cref="Session.Detach"/>): the session goes offline, or is
    /// forgotten when <paramref name="endNow"/>. False when another connection had taken it over.
    /// </summary>
    public bool Detach(MqttConnection connection, Session session, ref Will? will, DateTimeOffset now, out bool endNow)
    {
        lock (_lock)
        {
            if (!session.Detach(connection, ref will, now, journal, out endNow))
            {
                return false;
            }
            if (endNow)
            {
                RemoveLocked(session);
            }
            else
            {
                _offline.Add(session);
            }
            return true;
        }
    }

    /// <summary>Forgets the session of <paramref name="clientId"/> and unbinds its connection, whose will is cancelled. Null when there is none.</summary>
    public Session? Remove(string clientId, out MqttConnection? connection)
    {
        lock (_lock)
        {
            if (!_sessions.TryGetValue(clientId, out var session))
            {
                connection = null;
                return null;
            }
            RemoveLocked(session);
            // detached first, so the closing connection finds the session no longer its own and leaves it alone
            (connection, _) = session.Release();
            return session;
        }
    }

    /// <summary>Housekeeping: takes the wills now due from offline sessions and forgets the sessions that expired.</summary>
    public void TakeDue(DateTimeOffset now, ref List<MqttMessage>? wills, ref List<Session>? expired)
    {
        lock (_lock)
        {
            foreach (var session in _offline)
            {
                if (session.TakeDueWill(now, journal, out var expires) is { } will)
                {
                    (wills ??= new()).Add(will.Message);
                }
                if (expires)
                {
                    (expired ??= new()).Add(session);
                }
            }
            if (expired is not null)
            {
                foreach (var session in expired)
                {
                    RemoveLocked(session);
                }
            }
        }
    }

    /// <summary>Adds a session rebuilt from the store at start-up; it is offline until its client returns.</summary>
    public void AddRestored(Session session)
    {
        session.Local = local;
        lock (_lock)
        {
            _sessions[session.ClientId] = session;
            _offline.Add(session);
        }
    }

    /// <summary>Forgets a session: removes it from the index and records its end. Caller holds the lock.</summary>
    void RemoveLocked(Session session)
    {
        _sessions.Remove(session.ClientId);
        _offline.Remove(session);
        session.RecordEnded(journal);
    }
}
