using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// Server-side MQTT session state. Everything mutable is guarded by <c>lock (this)</c>; the connection's writer is the
/// only one that moves deliveries from <see cref="Pending"/> to <see cref="Inflight"/> (<see cref="TakeForSending"/>).
/// Lifecycle, acknowledgements and inbound QoS 2 ids change only through the methods below, which take the lock
/// themselves and record each change in the journal under it (so the log sees a session's changes in the order they happen).
/// </summary>
internal sealed class Session(string clientId) : IDeliveryTarget
{
    public string ClientId { get; } = clientId;
    public ClientIdentity Identity { get; private set; } = new(clientId, null);

    /// <summary>Subscriptions by their full filter (including any $share prefix).</summary>
    // The collections are made on first use: most sessions of an idle fleet never queue or subscribe to much, and
    // every connection pays for what its session holds. Read paths use the *Count properties, which allocate nothing.
    Dictionary<string, Subscription>? _subscriptions;
    SessionQueue? _queue;
    InflightWindow? _window;
    InboundQos2Ids? _inboundQos2;

    public Dictionary<string, Subscription> Subscriptions => _subscriptions ??= new(StringComparer.Ordinal);

    /// <summary>Most subscriptions this session ever held at once; never decreases. At most 1 means one publish
    /// cannot match it twice, so routing can skip the duplicate check for it.</summary>
    public int MostSubscriptionsHeld { get; private set; }

    /// <summary>Call under the session's lock after adding a subscription.</summary>
    public void NoteSubscriptionAdded() => MostSubscriptionsHeld = Math.Max(MostSubscriptionsHeld, Subscriptions.Count);
    public int SubscriptionCount => _subscriptions?.Count ?? 0;

    /// <summary>Deliveries waiting to be sent, oldest first (see <see cref="SessionQueue"/>). Change it only through the *Pending methods, which keep <see cref="PendingBytes"/>.</summary>
    public IEnumerable<Delivery> Pending => _queue?.Items ?? [];
    public int PendingCount => _queue?.Count ?? 0;

    /// <summary>What the queued deliveries cost in memory, by <see cref="SessionQueue.QueueCost"/>: the budget <see cref="BrokerOptions.MaxQueuedBytes"/> bounds it.</summary>
    public long PendingBytes => _queue?.Bytes ?? 0;

    public void EnqueuePending(Delivery delivery) => (_queue ??= new()).Enqueue(delivery);
    public Delivery DequeuePending() => _queue!.Dequeue();
    public void ClearPending() => _queue?.Clear();

    /// <summary>Under the session's lock: <see cref="SessionQueue.WhenDrained"/>, at once when the session is offline or ended (nobody drains it).</summary>
    public Task WhenDrained(long bytes, int count) => (_queue ??= new()).WhenDrained(bytes, count, _connection is null || Ended);

    /// <summary>Deliveries sent and not yet completed, by packet id (see <see cref="InflightWindow"/>).</summary>
    public Dictionary<ushort, Delivery> Inflight => Window.ById;
    public int InflightCount => _window?.ById.Count ?? 0;

    /// <summary>The in-flight window, made on first use: under the session's lock only.</summary>
    public InflightWindow Window => _window ??= new();

    /// <summary>PUBACK (<paramref name="awaiting"/> is AwaitingPubAck) or PUBCOMP (AwaitingPubComp) of delivery <paramref name="id"/>.</summary>
    public void Acknowledge(ushort id, DeliveryState awaiting, MqttBroker broker)
    {
        lock (this)
        {
            Window.Acknowledge(this, id, awaiting, broker);
        }
    }

    /// <inheritdoc cref="InflightWindow.ReceivePubRec"/>
    public bool ReceivePubRec(ushort id, bool refused, MqttBroker broker, MqttConnection connection, out bool completed)
    {
        lock (this)
        {
            return Window.ReceivePubRec(this, id, refused, broker, connection, out completed);
        }
    }

    /// <summary>A delivery sent in flight that the client cannot take (too large): out of the window, recorded as completed.</summary>
    public void DropInflight(Delivery delivery, MqttBroker broker)
    {
        lock (this)
        {
            Inflight.Remove(delivery.PacketId);
            broker.RecordCompleted(this, delivery);
        }
    }

    /// <summary>The writer's take for <paramref name="connection"/>: false, taking nothing, when it no longer owns the session; else <see cref="InflightWindow.Fill"/>.</summary>
    public bool TakeForSending(MqttConnection connection, bool resendInflight, int receiveMaximum, int maxBatch, List<Delivery> batch,
        ref List<Delivery>? releases, ref DateTimeOffset? clock, ref long flushAfterDurable, MqttBroker broker, out bool moreQueued)
    {
        lock (this)
        {
            moreQueued = false;
            if (Connection != connection)
            {
                return false;
            }
            moreQueued = InflightWindow.Fill(this, _queue, resendInflight, receiveMaximum, maxBatch, batch, ref releases, ref clock, ref flushAfterDurable, broker);
            return true;
        }
    }

    /// <summary>QoS 2 packet ids whose publish was routed and not yet released (PUBREL): duplicates are not routed again.</summary>
    public HashSet<ushort> InboundQos2 => (_inboundQos2 ??= new()).Routed;

    /// <summary>Inbound QoS 2 publishes the client has not completed: routed and awaiting PUBREL, or still undecided.</summary>
    public int InboundQos2Count => _inboundQos2?.Count ?? 0;

    /// <inheritdoc cref="InboundQos2Ids.Receive"/>
    public InboundQos2Receipt ReceiveQos2(ushort packetId, out InboundQos2Claim claim)
    {
        lock (this)
        {
            return (_inboundQos2 ??= new()).Receive(packetId, out claim);
        }
    }

    /// <summary>A QoS 2 publish was routed under <paramref name="claim"/>: its packet id is marked routed and recorded, unless the claim was given up.</summary>
    public void Qos2Routed(ushort packetId, InboundQos2Claim claim, MqttBroker broker)
    {
        lock (this)
        {
            if ((_inboundQos2 ??= new()).MarkRouted(packetId, claim))
            {
                broker.RecordInboundQos2(this, packetId, added: true);
            }
        }
    }

    /// <summary>Gives up a QoS 2 claim not yet routing and frees its id under the lock: a resend waiting on the outcome then finds the id free.</summary>
    public void RefuseQos2(ushort packetId, InboundQos2Claim claim)
    {
        lock (this)
        {
            if (claim.Refuse())
            {
                _inboundQos2?.Refused(packetId, claim);
            }
        }
    }

    /// <summary>PUBREL: frees the routed packet id and records it; false when it was not in use.</summary>
    public bool ReleaseQos2(ushort packetId, MqttBroker broker)
    {
        lock (this)
        {
            var known = InboundQos2.Remove(packetId);
            if (known)
            {
                broker.RecordInboundQos2(this, packetId, added: false);
            }
            return known;
        }
    }

    /// <summary>The client was told its QoS 2 publish failed (the store did): it may use the id again, not to be taken for a duplicate.</summary>
    public void ForgetQos2(ushort packetId)
    {
        lock (this)
        {
            InboundQos2.Remove(packetId);
        }
    }

    MqttConnection? _connection;

    /// <summary>The connection the session is attached to; null while offline (which releases held-back publishers).</summary>
    public MqttConnection? Connection
    {
        get => _connection;
        private set
        {
            _connection = value;
            if (value is null)
            {
                _queue?.ReleaseDrainWaiters();
            }
        }
    }
    public bool IsConnected => Connection is not null;

    /// <summary>Seconds the session outlives its connection; uint.MaxValue = never expires.</summary>
    public uint ExpiryInterval { get; set; }

    public DateTimeOffset? ExpiresAt { get; private set; }
    public DateTimeOffset? DisconnectedAt { get; private set; }
    public Will? PendingWill { get; private set; }
    public DateTimeOffset? WillDueAt { get; private set; }
    /// <summary>Set by <see cref="End"/>, which also releases held-back publishers (the queue's <see cref="SessionQueue.Clear"/>).</summary>
    public bool Ended { get; private set; }

    /// <summary>The session is in the durable store: its changes are recorded there.</summary>
    public bool Stored { get; set; }

    // ---------------------------------------------------------------- lifecycle (each takes the session's lock)

    /// <summary>Binds <paramref name="connection"/>: the session is online and stops expiring. Records the (re)start.</summary>
    public void Attach(MqttConnection connection, ClientIdentity identity, uint expiryInterval, SessionJournal journal)
    {
        lock (this)
        {
            Identity = identity;
            Connection = connection;
            ExpiryInterval = expiryInterval;
            ExpiresAt = null;
            journal.SessionStarted(this, expiryInterval, connection.Will);
        }
    }

    /// <summary>Unbinds the live connection (a takeover or an admin delete) and cancels a will waiting for its delay; returns both.</summary>
    public (MqttConnection? Previous, Will? PendingWill) Release()
    {
        lock (this)
        {
            var previous = Connection;
            Connection = null;
            // a will waiting for its delay is cancelled by the reconnect, unless the session ends now
            var will = PendingWill;
            PendingWill = null;
            WillDueAt = null;
            return (previous, will);
        }
    }

    /// <summary>Unbinds <paramref name="connection"/> after it closed; false when another took the session over. A will with a
    /// delay is kept here until due (<paramref name="will"/> becomes null); any other is the caller's to publish now.</summary>
    public bool Detach(MqttConnection connection, ref Will? will, DateTimeOffset now, SessionJournal journal, out bool endNow)
    {
        endNow = false;
        lock (this)
        {
            if (Connection != connection)
            {
                return false; // taken over: the new connection owns the session now
            }
            Connection = null;
            DisconnectedAt = now;
            if (ExpiryInterval == 0)
            {
                endNow = true;
            }
            else
            {
                if (ExpiryInterval != uint.MaxValue)
                {
                    ExpiresAt = now.AddSeconds(ExpiryInterval);
                }
                if (will is { DelaySeconds: > 0 })
                {
                    PendingWill = will;
                    var delay = Math.Min(will.DelaySeconds, ExpiryInterval);
                    WillDueAt = now.AddSeconds(delay);
                    will = null;
                }
                journal.SessionOffline(this, now, WillDueAt);
            }
            return true;
        }
    }

    /// <summary>For an offline session at housekeeping: the will that is due now (its delay passed, or the session expires), if any.</summary>
    public Will? TakeDueWill(DateTimeOffset now, SessionJournal journal, out bool expires)
    {
        lock (this)
        {
            expires = ExpiresAt is { } at && at <= now;
            if (PendingWill is not { } will || !(expires || WillDueAt <= now))
            {
                return null;
            }
            PendingWill = null;
            WillDueAt = null;
            if (!expires)
            {
                journal.SessionOffline(this, DisconnectedAt ?? now, null); // the will is out: not again after a restart
            }
            return will;
        }
    }

    /// <summary>Restores a stored session as offline since <paramref name="offlineSince"/>, with the will it still owes. Before it is shared.</summary>
    public void RestoreOffline(ClientIdentity identity, DateTimeOffset offlineSince, DateTimeOffset? expiresAt, Will? pendingWill, DateTimeOffset? willDueAt)
    {
        Identity = identity;
        DisconnectedAt = offlineSince;
        ExpiresAt = expiresAt;
        PendingWill = pendingWill;
        WillDueAt = willDueAt;
    }

    /// <summary>Records the end of a session its registry has just forgotten.</summary>
    public void RecordEnded(SessionJournal journal)
    {
        lock (this)
        {
            journal.SessionEnded(this);
        }
    }

    public void ChangeExpiryInterval(uint expiryInterval, SessionJournal journal)
    {
        lock (this)
        {
            ExpiryInterval = expiryInterval;
            journal.SessionExpiryChanged(this, expiryInterval);
        }
    }

    /// <summary>Ends the session: nothing more is queued to it. Returns its subscriptions and the shared-subscription deliveries it did not complete.</summary>
    public (List<Subscription> Subscriptions, List<Delivery> UndeliveredShared) End()
    {
        lock (this)
        {
            Ended = true;
            var subscriptions = Subscriptions.Values.ToList();
            Subscriptions.Clear();
            var undelivered = Inflight.Values.Where(d => d.Shared is not null).Concat(Pending.Where(d => d.Shared is not null)).ToList();
            _queue?.Clear();
            Inflight.Clear();
            _inboundQos2?.Clear();
            return (subscriptions, undelivered);
        }
    }

    /// <summary>Moves the session to another node: under one hold of its lock, <paramref name="take"/> copies what it holds, then its connection is unbound (<see cref="Release"/>) and it ends here (<see cref="End"/>).</summary>
    public (T Taken, MqttConnection? Previous, Will? PendingWill, List<Subscription> Subscriptions, List<Delivery> UndeliveredShared) HandOver<TState, T>(TState state, Func<Session, TState, T> take)
    {
        lock (this)
        {
            var taken = take(this, state);
            var (previous, will) = Release();
            var (subscriptions, undelivered) = End();
            return (taken, previous, will, subscriptions, undelivered);
        }
    }

    /// <summary>Adds the subscription or replaces its options (MQTT-3.8.4-3) and records it; the caller adds a new one to the trie.</summary>
    public (Subscription Subscription, bool Existed) Subscribe(
        string filter, string? group, string topicFilter, MqttQualityOfServiceLevel qos, MQTTnet.Packets.MqttTopicFilter options, uint subscriptionId, bool filtered, SessionJournal journal)
    {
        lock (this)
        {
            var existed = Subscriptions.TryGetValue(filter, out var subscription);
            if (!existed)
            {
                subscription = new Subscription(this, filter, group, topicFilter);
                Subscriptions[filter] = subscription;
                NoteSubscriptionAdded();
            }
            subscription!.SetOptions(qos, options, subscriptionId, filtered);
            journal.Subscribed(this, subscription);
            return (subscription, existed);
        }
    }

    /// <summary>Removes and records the subscription to <paramref name="filter"/>; the caller removes it from the trie.</summary>
    public bool Unsubscribe(string filter, SessionJournal journal, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Subscription? subscription)
    {
        lock (this)
        {
            if (!Subscriptions.Remove(filter, out subscription))
            {
                return false;
            }
            journal.Unsubscribed(this, filter);
            return true;
        }
    }

    /// <summary>Reads the session's state under its lock (snapshots, counts): <paramref name="read"/> must not change it.</summary>
    public T Read<TState, T>(TState state, Func<Session, TState, T> read)
    {
        lock (this)
        {
            return read(this, state);
        }
    }

    /// <summary>How this session's deliveries are queued; set by the registry (or the first subscribe) of the broker that holds it.</summary>
    public LocalDelivery? Local { get; set; }

    /// <summary>Puts <paramref name="delivery"/> on the queue under the lock, by <paramref name="local"/>'s rules (<see cref="LocalDelivery.Admit"/>).</summary>
    public bool Offer(LocalDelivery local, Delivery delivery, MqttConnection? origin, out MqttConnection? connection, out bool overflow)
    {
        lock (this)
        {
            return local.Admit(this, delivery, origin, out connection, out overflow);
        }
    }

    void IDeliveryTarget.Deliver(Delivery delivery, MqttConnection? origin) => Local!.Enqueue(this, delivery, origin);

    public static MqttQualityOfServiceLevel Min(MqttQualityOfServiceLevel a, MqttQualityOfServiceLevel b) => a < b ? a : b;
}
