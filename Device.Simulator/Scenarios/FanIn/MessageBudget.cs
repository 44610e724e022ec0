namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>How many messages a run may publish in all, claimed one at a time by any of its publishers. Thread-safe.</summary>
public sealed class MessageBudget(long messages)
{
    long _claimed;

    /// <summary>Claims the next message of the run; false once all have been claimed.</summary>
    public bool TryClaim()
    {
        if (Interlocked.Increment(ref _claimed) <= messages) return true;
        Interlocked.Decrement(ref _claimed);
        return false;
    }

    public bool Exhausted => Volatile.Read(ref _claimed) >= messages;
}
