using IotRealtime.Broker.Engine.Persistence;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// Acknowledgements that promise durability (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, and PUBREL, which promises the
/// broker will not send the PUBLISH again) leave only once the store holds everything recorded up to the moment they
/// were decided, and always in the order they were decided. Waiting happens here, off the reader: the connection keeps
/// reading while acknowledgements wait for the log. An acknowledgement may also wait for a task of its own (a SUBACK in
/// a cluster: its routes reaching the peers), in the same order. Made on a connection's first acknowledgement when there
/// is a store, or its first that waits for a task.
/// </summary>
internal sealed class DurableAckQueue(ConnectionState state, IBrokerStore? store)
{
    readonly ConnectionState _state = state;
    readonly IBrokerStore? _store = store;
    readonly Queue<(long Position, MqttPacket Ack, Task? After)> _queue = new();
    bool _pumpRunning;

    public void Send(MqttPacket ack, Task? after = null)
    {
        var position = _store?.Position ?? 0;
        if (after is { IsCompleted: true })
        {
            after = null;
        }
        lock (_queue)
        {
            if (_queue.Count == 0 && after is null && (_store is null || _store.IsDurable(position)))
            {
                _state.Connection.SendControl(ack);
                return;
            }
            _queue.Enqueue((position, ack, after));
            if (_pumpRunning)
            {
                return;
            }
            _pumpRunning = true;
        }
        _ = PumpAsync();
    }

    async Task PumpAsync()
    {
        while (true)
        {
            (long Position, MqttPacket Ack, Task? After) head;
            lock (_queue)
            {
                if (!_queue.TryPeek(out head))
                {
                    _pumpRunning = false;
                    return;
                }
            }
            var ack = head.Ack;
            try
            {
                if (_store is not null)
                {
                    await _store.WaitDurableAsync(head.Position).ConfigureAwait(false);
                }
                if (head.After is not null)
                {
                    await head.After.ConfigureAwait(false);
                }
            }
            catch (Exception)
            {
                // the store cannot write: never claim success
                ack = Refused(ack);
            }
            lock (_queue)
            {
                _queue.Dequeue();
            }
            if (ack is not null)
            {
                _state.Connection.SendControl(ack);
            }
        }
    }

    /// <summary>The acknowledgement to send when the store failed: an error reason in MQTT 5; in 3.1.1 none (the connection closes, the client resends).</summary>
    MqttPacket? Refused(MqttPacket ack)
    {
        if (!_state.IsV5)
        {
            _state.Connection.RequestClose(null);
            return null;
        }
        if (ack is MqttPubRecPacket refused && _state.Session is { } session)
        {
            // the client is told the publish failed and may use the id again: it must not be taken for a duplicate then
            session.ForgetQos2(refused.PacketIdentifier);
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
