namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// The credits of a fan-in run, in one of two shapes. Shared (<c>--inflight</c>): one closed loop of messages published
/// but not yet received, a credit back for each arrival. Ahead (<c>--ahead</c>): each publisher may be at most that many
/// messages past the newest of its messages the subscriber has had; a message passed over by a later one from the same
/// publisher counts as settled (one connection keeps its order, so it is not coming), so lost QoS 0 messages do not
/// shrink the window, and a broker that drops shows it as loss instead of as a slower loop.
/// </summary>
public sealed class FanInWindows : IDisposable
{
    readonly FanInFlow? _shared;
    readonly FanInFlow[] _perPublisher;
    readonly long[] _newest;
    readonly int[] _pending;
    readonly List<int> _touched = [];

    FanInWindows(FanInFlow? shared, FanInFlow[] perPublisher, int publishers)
    {
        _shared = shared;
        _perPublisher = perPublisher;
        _newest = new long[publishers];
        Array.Fill(_newest, -1);
        _pending = new int[perPublisher.Length];
    }

    public static FanInWindows Shared(int publishers, int inflight, long messages) =>
        new(new FanInFlow(inflight, messages), [], publishers);

    public static FanInWindows Ahead(int publishers, int ahead, long messages)
    {
        var budget = new MessageBudget(messages);
        return new(null, Enumerable.Range(0, publishers).Select(_ => new FanInFlow(ahead, budget)).ToArray(), publishers);
    }

    public bool PerPublisher => _shared is null;

    /// <summary>The flow publisher <paramref name="publisher"/> takes its credits from.</summary>
    public FanInFlow For(int publisher) => _shared ?? _perPublisher[publisher];

    /// <summary>The highest sequence of <paramref name="publisher"/> that has arrived, −1 before the first.</summary>
    public long Newest(int publisher) => Volatile.Read(ref _newest[publisher]);

    /// <summary>A first-time arrival, from the subscriber's read loop (one thread).</summary>
    public void Arrived(int publisher, long sequence)
    {
        if ((uint)publisher >= (uint)_newest.Length) return;
        var newest = _newest[publisher];
        if (sequence <= newest) return;
        Volatile.Write(ref _newest[publisher], sequence);
        if (_shared is not null) return;
        if (_pending[publisher] == 0) _touched.Add(publisher);
        _pending[publisher] += (int)Math.Min(sequence - newest, int.MaxValue / 2);
    }

    /// <summary>After each read of the subscriber: gives back the credits its <paramref name="fresh"/> arrivals settled.</summary>
    public void Settle(int fresh)
    {
        if (_shared is not null)
        {
            _shared.Return(fresh);
            return;
        }

        foreach (var publisher in _touched)
        {
            _perPublisher[publisher].Return(_pending[publisher]);
            _pending[publisher] = 0;
        }

        _touched.Clear();
    }

    public void Dispose()
    {
        _shared?.Dispose();
        foreach (var flow in _perPublisher) flow.Dispose();
    }
}
