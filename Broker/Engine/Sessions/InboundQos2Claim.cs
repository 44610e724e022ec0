namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// An inbound QoS 2 PUBLISH between receipt and decision. Its packet id is taken at receipt, so a resend is never routed
/// twice; but only a routed publish keeps it (until PUBREL). A refusal, or a connection that closes before the accept
/// stage answered, gives it up, and a resend is then a new publish. A resend that arrives while the first is still
/// undecided (a takeover during the accept stage) waits for <see cref="OutcomeAsync"/>.
/// </summary>
internal sealed class InboundQos2Claim
{
    const int Pending = 0;
    const int Routing = 1;
    const int Routed = 2;
    const int Refused = 3;

    readonly Lock _gate = new();
    int _state;
    TaskCompletionSource<bool>? _decided;

    /// <summary>Takes the claim for routing; false when it was given up first (its connection closed).</summary>
    public bool TryBeginRouting() => Interlocked.CompareExchange(ref _state, Routing, Pending) == Pending;

    /// <summary>The publish is routed: a resend is a duplicate from now on.</summary>
    public void EndRouting() => Decide(Routed);

    /// <summary>Gives the claim up unless routing already began (then the router finishes it). Called by <see cref="Session.RefuseQos2"/>, under the session's lock.</summary>
    public bool Refuse()
    {
        if (Interlocked.CompareExchange(ref _state, Refused, Pending) != Pending)
        {
            return false;
        }
        Signal(false);
        return true;
    }

    /// <summary>True once the publish was routed; false when it was refused or given up.</summary>
    public Task<bool> OutcomeAsync()
    {
        lock (_gate)
        {
            return Volatile.Read(ref _state) switch
            {
                Routed => Task.FromResult(true),
                Refused => Task.FromResult(false),
                _ => (_decided ??= new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously)).Task,
            };
        }
    }

    void Decide(int state)
    {
        Volatile.Write(ref _state, state);
        Signal(state == Routed);
    }

    void Signal(bool routed)
    {
        TaskCompletionSource<bool>? decided;
        lock (_gate)
        {
            decided = _decided;
        }
        decided?.TrySetResult(routed);
    }
}
