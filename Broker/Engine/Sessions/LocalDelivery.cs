using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// Puts deliveries on this node's sessions' queues: the offline QoS 0 rule, the queue budget and its overflow policy,
/// the journal record of each QoS 1/2 delivery, and the wake-up of the session's connection writer. One per broker;
/// each <see cref="Session"/> delivers through it.
/// </summary>
internal sealed class LocalDelivery(MqttBroker broker, SessionJournal journal)
{
    BrokerOptions Options => broker.Options;

    public void Enqueue(Session session, Delivery delivery, MqttConnection? origin = null)
    {
        if (!session.Offer(this, delivery, origin, out var connection, out var overflow))
        {
            return;
        }
        if (overflow && Options.QueueOverflowPolicy == QueueOverflowPolicy.Disconnect)
        {
            broker.Log.QueueOverflow(session.ClientId, Options.QueueOverflowPolicy);
            connection?.RequestClose(MqttDisconnectReasonCode.QuotaExceeded);
            return;
        }
        if (connection is not null && (origin is null || !origin.DeferSignal(connection)))
        {
            connection.Signal();
        }
    }

    /// <summary>
    /// The steps under the session's lock (<see cref="Session.Offer"/> takes it): the queue, its budget and overflow policy, the
    /// journal record, and a publisher held back. False when nothing more is to be done (the session ended, offline QoS 0).
    /// </summary>
    public bool Admit(Session session, Delivery delivery, MqttConnection? origin, out MqttConnection? connection, out bool overflow)
    {
        overflow = false;
        if (session.Ended)
        {
            connection = null;
            return false;
        }
        connection = session.Connection;
        if (connection is null && delivery.QoS == MqttQualityOfServiceLevel.AtMostOnce && !Options.QueueQos0WhenOffline)
        {
            broker.CountDropped(DropReason.OfflineQos0);
            return false;
        }
        if (!FitsQueue(session, delivery))
        {
            overflow = true;
            switch (Options.QueueOverflowPolicy)
            {
                case QueueOverflowPolicy.DropOldest:
                case QueueOverflowPolicy.Backpressure:
                    // as many of the oldest as it takes (a message always fits an empty queue)
                    while (session.PendingCount > 0 && !FitsQueue(session, delivery))
                    {
                        var dropped = session.DequeuePending();
                        broker.CountDropped(DropReason.QueueFull);
                        journal.Completed(session, dropped);
                    }
                    journal.Enqueued(session, delivery);
                    session.EnqueuePending(delivery);
                    break;
                case QueueOverflowPolicy.DropNew:
                case QueueOverflowPolicy.Disconnect:
                    broker.CountDropped(DropReason.QueueFull);
                    break;
            }
        }
        else
        {
            journal.Enqueued(session, delivery);
            session.EnqueuePending(delivery);
        }
        if (origin is not null && connection is not null && connection != origin
            && Options.QueueOverflowPolicy == QueueOverflowPolicy.Backpressure && OverHighWater(session))
        {
            origin.Hold.HoldUntil(session.WhenDrained(Options.MaxQueuedBytes / 4, Options.MaxQueuedMessages / 4));
        }
        return true;
    }

    /// <summary>Whether <paramref name="delivery"/> fits the session's queue: its byte budget first, the message cap as a second guard.</summary>
    bool FitsQueue(Session session, Delivery delivery) =>
        session.PendingCount < Options.MaxQueuedMessages && session.PendingBytes + SessionQueue.QueueCost(delivery) <= Options.MaxQueuedBytes;

    /// <summary>Backpressure's high-water mark: half the byte budget or half the message cap.</summary>
    bool OverHighWater(Session session) =>
        session.PendingBytes > Options.MaxQueuedBytes / 2 || session.PendingCount > Options.MaxQueuedMessages / 2;
}
