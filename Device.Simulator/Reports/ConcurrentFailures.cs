namespace IotRealtime.Device.Simulator.Reports;

/// <summary>Failure counts by reason; few distinct reasons, so a lock is cheaper than anything cleverer.</summary>
public sealed class ConcurrentFailures
{
    readonly Dictionary<string, int> _byReason = [];
    readonly Lock _lock = new();
    int _total;

    public int Total => Volatile.Read(ref _total);

    public void Add(string reason)
    {
        lock (_lock)
        {
            _byReason[reason] = _byReason.GetValueOrDefault(reason) + 1;
            _total++;
        }
    }

    public IReadOnlyDictionary<string, int> Snapshot()
    {
        lock (_lock) return new Dictionary<string, int>(_byReason);
    }
}
