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
    /// forgotten when <paramref name="endNow"/>; <paramref name="will"/> is the caller's to publish now. False when another
    /// connection (or a handover) had taken it over. The connection's will is taken under this lock, as a takeover takes
    /// it, so exactly one of them has it.
    /// </summary>
    public bool Detach(MqttConnection connection, Session session, bool clean, DateTimeOffset now, out Will? will, out bool endNow)
    {
        lock (_lock)
        {
            will = clean ? null : connection.Will;
            connection.Will = null;
            if (!session.Detach(connection, ref will, now, journal, out endNow))
            {
                will = null;
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

    /// <summary>What a handover did (see <see cref="HandOver"/>): the connection it unbound, the will due because of it, the
    /// snapshot (null for a clean-start claim), and the ended session's subscriptions and the shared deliveries to hand on.</summary>
    public readonly record struct HandedOver(MqttConnection? Previous, Will? DueWill, SessionSnapshot? Snapshot, List<Subscription> Subscriptions, List<Delivery> UndeliveredShared);

    /// <summary>
    /// Ends the session of <paramref name="clientId"/> here for another node, under this lock: it is forgotten (its end
    /// recorded), its connection unbound, and — unless <paramref name="cleanStart"/> — what it holds is taken as a snapshot.
    /// The will follows <see cref="Attach"/>'s rules: a clean start ends the session, so any will is due now; a resume makes a
    /// will with no delay due now, and moves a delayed one with the snapshot, pending, for the resume there to cancel.
    /// </summary>
    public HandedOver? HandOver(string clientId, bool cleanStart, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (!_sessions.TryGetValue(clientId, out var session))
            {
                return null;
            }
            RemoveLocked(session);
            var (snapshot, previous, pendingWill, subscriptions, undelivered) =
                session.HandOver((cleanStart, now), static (s, a) => a.cleanStart ? null : SessionHandover.Take(s, a.now));
            var will = pendingWill;
            if (previous is not null)
            {
                will ??= previous.Will;
                previous.Will = null;
            }
            if (snapshot is null)
            {
                return new HandedOver(previous, will, null, subscriptions, undelivered);
            }
            if (will is { DelaySeconds: > 0 } && snapshot.PendingWill is null)
            {
                // the live connection's delayed will: it waits from now on the node the session moves to
                var due = now.AddSeconds(Math.Min(will.DelaySeconds, snapshot.ExpiryInterval));
                snapshot = snapshot with { PendingWill = new SnapshotWill(will.Message, will.DelaySeconds, due) };
            }
            // the shared deliveries move with the session, not to other members
            return new HandedOver(previous, will is { DelaySeconds: 0 } ? will : null, snapshot, subscriptions, []);
        }
    }

    /// <summary>
    /// Adds a session moved here from another node, offline until its client attaches, replacing any session of the same
    /// client id (whose connection is unbound and whose will is due, as when a session ends). <paramref name="record"/>
    /// journals it and puts its subscriptions in the trie under this lock, after the replaced one's end and before anyone can find it.
    /// </summary>
    public (MqttConnection? Previous, Session? Replaced, Will? DueWill) Adopt(Session session, Action<Session, SessionJournal> record)
    {
        session.Local = local;
        lock (_lock)
        {
            MqttConnection? previous = null;
            Will? will = null;
            if (_sessions.TryGetValue(session.ClientId, out var existing))
            {
                (previous, will) = existing.Release();
                if (previous is not null)
                {
                    will ??= previous.Will;
                    previous.Will = null;
                }
                RemoveLocked(existing);
            }
            record(session, journal);
            _sessions[session.ClientId] = session;
            _offline.Add(session);
            return (previous, existing, will);
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
