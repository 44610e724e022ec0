namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// The closed loop of a fan-in run: a publisher takes one credit per message and the subscriber gives it back when
/// the message arrives, so at most <c>inflight</c> messages are on their way; and at most <c>messages</c> are
/// published in all (a <see cref="MessageBudget"/>, which several flows may share). An open-loop run starts with no
/// credits and has a pacer return them at its rate instead.
/// </summary>
public sealed class FanInFlow(int initialCredits, MessageBudget budget) : IDisposable
{
    readonly SemaphoreSlim _credits = new(initialCredits);

    public FanInFlow(int initialCredits, long messages)
        : this(initialCredits, new MessageBudget(messages))
    {
    }

    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken) => new(_credits.WaitAsync(Timeout.Infinite, cancellationToken));

    public bool TryTake() => _credits.Wait(0);

    public void Return(int count)
    {
        if (count > 0) _credits.Release(count);
    }

    /// <summary>Claims the next message of the run; false once all have been claimed.</summary>
    public bool TryClaim() => budget.TryClaim();

    public bool Exhausted => budget.Exhausted;

    public void Dispose() => _credits.Dispose();
}
