namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>The embedded store, bound from the "Store" configuration section.</summary>
public sealed class StoreOptions
{
    public DurabilityPolicy Durability { get; set; } = DurabilityPolicy.Fsync;

    /// <summary>Directory of the log files; the host sets it to {Data:Directory}/store.</summary>
    public string Directory { get; set; } = "data/store";

    /// <summary>The log is rewritten with only live records once it is this large and four times the last rewrite.</summary>
    public long CompactAfterBytes { get; set; } = 64L * 1024 * 1024;

    public IEnumerable<string> Validate()
    {
        if (Durability != DurabilityPolicy.None && string.IsNullOrWhiteSpace(Directory))
        {
            yield return "Store:Directory must be set when Store:Durability is not None.";
        }
        if (CompactAfterBytes < 1024 * 1024)
        {
            yield return $"Store:CompactAfterBytes must be at least 1048576 (was {CompactAfterBytes}).";
        }
    }
}
