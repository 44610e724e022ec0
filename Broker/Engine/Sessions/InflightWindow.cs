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
}
