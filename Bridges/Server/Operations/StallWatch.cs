namespace IotRealtime.Bridges.Operations;

/// <summary>
/// Whether a stream's write is stuck: stamped when a write to the client starts, cleared when it completes. A write
/// that cannot complete means the client has not taken the data already buffered for it (response buffer, socket): it
/// stopped reading. The registry's tick asks; the stream then closes the connection, since its writer, stuck in that
/// write, cannot.
/// </summary>
public sealed class StallWatch(TimeSpan timeout, TimeProvider time)
{
    long _since;

    public TimeSpan Timeout => timeout;

    /// <summary>A write has started and not completed.</summary>
    public bool Pending => Volatile.Read(ref _since) != 0;

    /// <summary>A write has been pending for at least <see cref="Timeout"/>.</summary>
    public bool Expired
    {
        get
        {
            var since = Volatile.Read(ref _since);
            return since != 0 && time.GetElapsedTime(since) >= timeout;
        }
    }

    public void Begin() => Volatile.Write(ref _since, Math.Max(1, time.GetTimestamp()));

    public void End() => Volatile.Write(ref _since, 0);
}
