using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// Acknowledgements that promise durability (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, and PUBREL, which promises the
/// broker will not send the PUBLISH again) leave only once the store
/// holds everything recorded up to the moment they were decided, and always in the order they were decided. Waiting
/// happens here, off the reader: the connection keeps reading while acknowledgements wait for the log.
/// </summary>
internal sealed partial class MqttConnection
{
    Queue<(long Position, MqttPacket Ack)>? _ackQueue;

    // made on first use, by whichever thread gets there first
    Queue<(long Position, MqttPacket Ack)> AckQueue => _ackQueue ?? Interlocked.CompareExchange(ref _ackQueue, new(), null) ?? _ackQueue!;
    bool _ackPumpRunning;

    void SendAckWhenDurable(MqttPacket ack)
    {
        var store = _broker.Store;
        if (store is null)
        {
            SendControl(ack);
            return;
        }
        var position = store.Position;
        lock (AckQueue)
        {
            if (AckQueue.Count == 0 && store.IsDurable(position))
            {
                SendControl(ack);
                return;
            }
            AckQueue.Enqueue((position, ack));
            if (_ackPumpRunning)
            {
                return;
            }
            _ackPumpRunning = true;
        }
        _ = PumpAcksAsync();
    }

    async Task PumpAcksAsync()
    {
        var store = _broker.Store!;
        while (true)
        {
            (long Position, MqttPacket Ack) head;
            lock (AckQueue)
            {
                if (!AckQueue.TryPeek(out head))
                {
                    _ackPumpRunning = false;
                    return;
                }
            }
            var ack = head.Ack;
            try
            {
                await store.WaitDurableAsync(head.Position).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // the store cannot write: never claim success
                ack = Refused(ack);
            }
            lock (AckQueue)
            {
                AckQueue.Dequeue();
            }
            if (ack is not null)
            {
                SendControl(ack);
            }
        }
    }

    /// <summary>The acknowledgement to send when the store failed: an error reason in MQTT 5; in 3.1.1 none (the connection closes, the client resends).</summary>
    MqttPacket? Refused(MqttPacket ack)
    {
        if (!IsV5)
        {
            RequestClose(null);
            return null;
        }
        if (ack is MqttPubRecPacket refused && Session is { } session)
        {
            // the client is told the publish failed and may use the id again: it must not be taken for a duplicate then
            lock (session)
            {
                session.InboundQos2.Remove(refused.PacketIdentifier);
            }
        }
        return ack switch
        {
            MqttPubAckPacket a => new MqttPubAckPacket { PacketIdentifier = a.PacketIdentifier, ReasonCode = MqttPubAckReasonCode.UnspecifiedError },
            MqttPubRecPacket r => new MqttPubRecPacket { PacketIdentifier = r.PacketIdentifier, ReasonCode = MqttPubRecReasonCode.UnspecifiedError },
            MqttSubAckPacket s => new MqttSubAckPacket { PacketIdentifier = s.PacketIdentifier, ReasonCodes = s.ReasonCodes.Select(_ => MqttSubscribeReasonCode.UnspecifiedError).ToList() },
            _ => ack,
        };
    }
}
