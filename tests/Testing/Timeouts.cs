namespace IotRealtime.Testing;

/// <summary>Deadlines for condition waits: generous, because a loaded 2-core CI machine starts processes slowly.</summary>
public static class Timeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(20);
}
