namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// Which devices one process simulates: a contiguous block of the fleet's device indexes. Shard i of n gets
/// [⌊total·i/n⌋, ⌊total·(i+1)/n⌋); splitting shard i over k processes is shard i·k+j of n·k, which covers exactly the
/// same devices, so hosts and processes partition the fleet the same way.
/// </summary>
public readonly record struct ShardPlan(int Index, int Count)
{
    public static ShardPlan Whole => new(0, 1);

    public (int First, int Count) Devices(int total)
    {
        var first = (int)((long)total * Index / Count);
        var end = (int)((long)total * (Index + 1) / Count);
        return (first, end - first);
    }

    /// <summary>Process <paramref name="process"/> of <paramref name="processes"/> within this shard.</summary>
    public ShardPlan Split(int process, int processes) => new(Index * processes + process, Count * processes);

    public override string ToString() => $"{Index}/{Count}";

    public static bool TryParse(string text, out ShardPlan plan)
    {
        plan = Whole;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0
            || !int.TryParse(text.AsSpan(0, slash), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index)
            || !int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count)
            || count < 1 || index >= count)
        {
            return false;
        }

        plan = new ShardPlan(index, count);
        return true;
    }
}
