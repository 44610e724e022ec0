using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// A session's deliveries sent and not yet completed, by packet id, with the send order (needed only to resend after a
/// reconnect) and the packet ids it hands out. Owned by its <see cref="Session"/> and used only under the session's lock.
/// </summary>
internal sealed class InflightWindow
{
    long _sendOrder;
    ushort _nextPacketId;

    /// <summary>A plain dictionary: acknowledgements remove from anywhere in O(1); the send order is kept in <see cref="Delivery.SendOrder"/>.</summary>
    public Dictionary<ushort, Delivery> ById { get; } = new();

    /// <summary>Marks <paramref name="delivery"/> as the latest one put in flight.</summary>
    public void StampSendOrder(Delivery delivery) => delivery.SendOrder = ++_sendOrder;

    /// <summary>In-flight deliveries in the order they were first sent.</summary>
    public IEnumerable<Delivery> InSendOrder() => ById.Values.OrderBy(d => d.SendOrder);

    /// <summary>The last packet id handed out; a session moved to another node continues from it.</summary>
    public ushort LastPacketId { get => _nextPacketId; set => _nextPacketId = value; }

    public ushort NextPacketId()
    {
        // skips ids still in flight; the writer never has more than 65535 in flight (Receive Maximum caps it)
        for (var i = 0; i < 65536; i++)
        {
            _nextPacketId = _nextPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_nextPacketId + 1);
            if (!ById.ContainsKey(_nextPacketId))
            {
                return _nextPacketId;
            }
        }
        throw new InvalidOperationException("No free packet identifier.");
    }

    // ---------------------------------------------------------------- the QoS 1/2 state machine (under the session's lock: see Session)

    /// <summary>PUBACK or PUBCOMP: completes and records delivery <paramref name="id"/> if it is awaiting <paramref name="awaiting"/>.</summary>
    public void Acknowledge(Session session, ushort id, DeliveryState awaiting, MqttBroker broker)
    {
        if (ById.TryGetValue(id, out var d) && d.State == awaiting)
        {
            ById.Remove(id);
            broker.RecordCompleted(session, d);
        }
    }

    /// <summary>
    /// PUBREC: false when <paramref name="id"/> is no QoS 2 delivery awaiting PUBREC or PUBCOMP. A refusal completes it and
    /// signals <paramref name="connection"/> (<paramref name="completed"/>); otherwise it now awaits PUBCOMP, recorded.
    /// </summary>
    public bool ReceivePubRec(Session session, ushort id, bool refused, MqttBroker broker, MqttConnection connection, out bool completed)
    {
        completed = false;
        if (!ById.TryGetValue(id, out var d) || d.State is not (DeliveryState.AwaitingPubRec or DeliveryState.AwaitingPubComp))
        {
            return false;
        }
        if (refused)
        {
            ById.Remove(id);
            broker.RecordCompleted(session, d);
            connection.Signal();
            completed = true;
            return true;
        }
        if (d.State != DeliveryState.AwaitingPubComp)
        {
            d.State = DeliveryState.AwaitingPubComp;
            broker.RecordInflight(session, d);
        }
        return true;
    }

    /// <summary>
    /// The writer's take (see <see cref="Session.TakeForSending"/>): on a resend, the deliveries in flight in send order (those
    /// awaiting PUBCOMP into <paramref name="releases"/>), then queued ones while the client's window has room, QoS 1/2 ones
    /// put in flight and recorded. Returns whether more is queued than this batch took (and the window is not full).
    /// </summary>
    public static bool Fill(Session session, SessionQueue? queue, bool resendInflight, int receiveMaximum, int maxBatch, List<Delivery> batch,
        ref List<Delivery>? releases, ref DateTimeOffset? clock, ref long flushAfterDurable, MqttBroker broker)
    {
        if (resendInflight)
        {
            foreach (var d in session.Window.InSendOrder())
            {
                if (d.State == DeliveryState.AwaitingPubComp)
                {
                    (releases ??= new()).Add(d);
                }
                else
                {
                    batch.Add(d);
                }
            }
        }
        var windowFull = false;
        while (batch.Count < maxBatch && queue is not null && queue.TryPeek(out var next))
        {
            if (next.QoS > 0 && session.InflightCount >= receiveMaximum)
            {
                windowFull = true;
                break;
            }
            queue.Dequeue();
            // the clock is read only for messages that can expire: most never do, and the writer runs often
            if (next.Message.ExpiresAt is not null && next.Message.IsExpired(clock ??= broker.Time.GetUtcNow()))
            {
                broker.CountDropped(DropReason.Expired);
                broker.RecordCompleted(session, next);
                continue;
            }
            if (next.QoS > 0)
            {
                var window = session.Window;
                next.PacketId = window.NextPacketId();
                next.State = next.QoS == MqttQualityOfServiceLevel.AtLeastOnce ? DeliveryState.AwaitingPubAck : DeliveryState.AwaitingPubRec;
                window.ById.Add(next.PacketId, next);
                window.StampSendOrder(next);
                broker.RecordInflight(session, next);
                if (next.QoS == MqttQualityOfServiceLevel.ExactlyOnce && next.DeliveryId != 0)
                {
                    flushAfterDurable = broker.Store?.Position ?? 0;
                }
            }
            batch.Add(next);
        }
        // not while the client's window is full: its next acknowledgement signals the writer, and coming round before that would spin
        return queue is { Count: > 0 } && !windowFull;
    }
}
