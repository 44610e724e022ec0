namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// A session's inbound QoS 2 packet ids (the receiver's half of exactly-once): ids whose publish was routed and not yet
/// released, and ids still undecided in the accept stage. Made on a session's first QoS 2 publish; guarded by the
/// session's lock.
/// </summary>
internal sealed class InboundQos2Ids
{
    HashSet<ushort>? _routed;

    /// <summary>QoS 2 packet ids received and not yet routed or refused (see <see cref="InboundQos2Claim"/>).</summary>
    Dictionary<ushort, InboundQos2Claim>? _claims;

    /// <summary>QoS 2 packet ids whose publish was routed and not yet released (PUBREL): duplicates are not routed again.</summary>
    public HashSet<ushort> Routed => _routed ??= new();

    /// <summary>Routed and awaiting PUBREL, or still undecided.</summary>
    public int Count => (_routed?.Count ?? 0) + (_claims?.Count ?? 0);

    /// <summary>
    /// Called under the session's lock when a QoS 2 PUBLISH arrives. <see cref="InboundQos2Receipt.New"/>: <paramref name="claim"/>
    /// is a new claim on the id. <see cref="InboundQos2Receipt.Duplicate"/>: routed before, acknowledge only.
    /// <see cref="InboundQos2Receipt.Undecided"/>: <paramref name="claim"/> is the first publish's, still in the accept stage.
    /// </summary>
    public InboundQos2Receipt Receive(ushort packetId, out InboundQos2Claim claim)
    {
        if (_routed is not null && _routed.Contains(packetId))
        {
            claim = null!;
            return InboundQos2Receipt.Duplicate;
        }
        _claims ??= new();
        if (_claims.TryGetValue(packetId, out var existing))
        {
            claim = existing;
            return InboundQos2Receipt.Undecided;
        }
        claim = new InboundQos2Claim();
        _claims[packetId] = claim;
        return InboundQos2Receipt.New;
    }

    /// <summary>Called under the session's lock once the claim's publish is routed: the id is held until PUBREL. True when it was newly held.</summary>
    public bool MarkRouted(ushort packetId, InboundQos2Claim claim)
    {
        Refused(packetId, claim);
        return Routed.Add(packetId);
    }

    /// <summary>Called under the session's lock when the claim's publish was refused or given up (or once it is routed): the claim goes.</summary>
    public void Refused(ushort packetId, InboundQos2Claim claim)
    {
        if (_claims is not null && _claims.TryGetValue(packetId, out var held) && ReferenceEquals(held, claim))
        {
            _claims.Remove(packetId);
        }
    }

    /// <summary>Called under the session's lock when the session ends: undecided claims are given up.</summary>
    public void Clear()
    {
        _routed?.Clear();
        if (_claims is { Count: > 0 } claims)
        {
            foreach (var claim in claims.Values)
            {
                claim.Refuse();
            }
            claims.Clear();
        }
    }
}
