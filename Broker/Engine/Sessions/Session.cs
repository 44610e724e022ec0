using IotRealtime.Broker.Engine.Security;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// Server-side MQTT session state. Everything mutable is guarded by <c>lock (this)</c>; the connection's writer is the
/// only one that moves deliveries from <see cref="Pending"/> to <see cref="Inflight"/>.
/// </summary>
internal sealed class Session(string clientId)
{
    public string ClientId { get; } = clientId;
    public ClientIdentity Identity { get; set; } = new(clientId, null);

    /// <summary>Subscriptions by their full filter (including any $share prefix).</summary>
    // The collections are made on first use: most sessions of an idle fleet never queue or subscribe to much, and
    // every connection pays for what its session holds. Read paths use the *Count properties, which allocate nothing.
    Dictionary<string, Subscription>? _subscriptions;
    Queue<Delivery>? _pending;
    Dictionary<ushort, Delivery>? _inflight;
    InboundQos2Ids? _inboundQos2;

    public Dictionary<string, Subscription> Subscriptions => _subscriptions ??= new(StringComparer.Ordinal);

    /// <summary>Most subscriptions this session ever held at once; never decreases. At most 1 means one publish
    /// cannot match it twice, so routing can skip the duplicate check for it.</summary>
    public int MostSubscriptionsHeld { get; private set; }

    /// <summary>Call under the session's lock after adding a subscription.</summary>
    public void NoteSubscriptionAdded()
    {
        if (Subscriptions.Count > MostSubscriptionsHeld)
        {
            MostSubscriptionsHeld = Subscriptions.Count;
        }
    }
    public int SubscriptionCount => _subscriptions?.Count ?? 0;

    /// <summary>Deliveries waiting to be sent, oldest first. Change it only through the *Pending methods, which keep <see cref="PendingBytes"/>.</summary>
    public IEnumerable<Delivery> Pending => (IEnumerable<Delivery>?)_pending ?? [];
    public int PendingCount => _pending?.Count ?? 0;

    /// <summary>What the queued deliveries cost in memory, by <see cref="QueueCost"/>: the budget <see cref="BrokerOptions.MaxQueuedBytes"/> bounds it.</summary>
    public long PendingBytes { get; private set; }

    // a Delivery, its share of the queue's array and what routing allocated for it, measured with a memory profiler at about 90 bytes
    const int DeliveryOverhead = 96;

    /// <summary>Bytes one queued delivery holds: the message as if it were this session's alone (it is shared with other subscribers, so this errs high), plus the delivery itself.</summary>
    public static long QueueCost(Delivery delivery) => delivery.Message.Payload.Length + 2L * delivery.Message.Topic.Length + DeliveryOverhead;

    public void EnqueuePending(Delivery delivery)
    {
        (_pending ??= new()).Enqueue(delivery);
        PendingBytes += QueueCost(delivery);
    }

    public Delivery DequeuePending()
    {
        var delivery = _pending!.Dequeue();
        PendingBytes -= QueueCost(delivery);
        return delivery;
    }

    public void ClearPending()
    {
        _pending?.Clear();
        PendingBytes = 0;
    }

    /// <summary>Deliveries sent and not yet completed, by packet id. A plain dictionary: acknowledgements remove from
    /// anywhere in O(1); the send order, needed only to resend after a reconnect, is kept in <see cref="Delivery.SendOrder"/>.</summary>
    public Dictionary<ushort, Delivery> Inflight => _inflight ??= new();
    public int InflightCount => _inflight?.Count ?? 0;

    long _sendOrder;

    /// <summary>Marks <paramref name="delivery"/> as the latest one put in flight.</summary>
    public void StampSendOrder(Delivery delivery) => delivery.SendOrder = ++_sendOrder;

    /// <summary>In-flight deliveries in the order they were first sent.</summary>
    public IEnumerable<Delivery> InflightInSendOrder() => Inflight.Values.OrderBy(d => d.SendOrder);

    /// <summary>QoS 2 packet ids whose publish was routed and not yet released (PUBREL): duplicates are not routed again.</summary>
    public HashSet<ushort> InboundQos2 => (_inboundQos2 ??= new()).Routed;

    /// <summary>Inbound QoS 2 publishes the client has not completed: routed and awaiting PUBREL, or still undecided.</summary>
    public int InboundQos2Count => _inboundQos2?.Count ?? 0;

    /// <inheritdoc cref="InboundQos2Ids.Receive"/>
    public InboundQos2Receipt ReceiveQos2(ushort packetId, out InboundQos2Claim claim) => (_inboundQos2 ??= new()).Receive(packetId, out claim);

    /// <inheritdoc cref="InboundQos2Ids.MarkRouted"/>
    public bool Qos2Routed(ushort packetId, InboundQos2Claim claim) => (_inboundQos2 ??= new()).MarkRouted(packetId, claim);

    /// <inheritdoc cref="InboundQos2Ids.Refused"/>
    public void Qos2Refused(ushort packetId, InboundQos2Claim claim) => _inboundQos2?.Refused(packetId, claim);

    /// <inheritdoc cref="InboundQos2Ids.Clear"/>
    public void ClearInboundQos2() => _inboundQos2?.Clear();

    public bool TryPeekPending(out Delivery delivery)
    {
        if (_pending is { Count: > 0 } pending)
        {
            delivery = pending.Peek();
            return true;
        }
        delivery = null!;
        return false;
    }

    public MqttConnection? Connection { get; set; }
    public bool IsConnected => Connection is not null;

    /// <summary>Seconds the session outlives its connection; uint.MaxValue = never expires.</summary>
    public uint ExpiryInterval { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }
    public DateTimeOffset? DisconnectedAt { get; set; }
    public Will? PendingWill { get; set; }
    public DateTimeOffset? WillDueAt { get; set; }
    public bool Ended { get; set; }

    /// <summary>The session is in the durable store: its changes are recorded there.</summary>
    public bool Stored { get; set; }

    ushort _nextPacketId;

    public ushort NextPacketId()
    {
        // skips ids still in flight; the writer never has more than 65535 in flight (Receive Maximum caps it)
        for (var i = 0; i < 65536; i++)
        {
            _nextPacketId = _nextPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_nextPacketId + 1);
            if (!Inflight.ContainsKey(_nextPacketId))
            {
                return _nextPacketId;
            }
        }
        throw new InvalidOperationException("No free packet identifier.");
    }

    public static MqttQualityOfServiceLevel Min(MqttQualityOfServiceLevel a, MqttQualityOfServiceLevel b) => a < b ? a : b;
}
