namespace IotRealtime.Device.Simulator.Reports;

/// <summary>
/// Tells when a message has reached every subscriber that should get it (fan-out): one arrival counter per message,
/// in a ring of <c>window</c> slots per publisher. Safe because a publisher's messages complete in order (MQTT keeps
/// per-subscriber order for one topic) and at most <c>window</c> are incomplete at once (the closed loop's bound).
/// Thread-safe: subscribers' receive loops call <see cref="Arrive"/> concurrently.
/// </summary>
public sealed class DeliveryCompletion
{
    readonly int[][] _counts;
    readonly int _window;
    readonly int _needed;

    public DeliveryCompletion(int publishers, int window, int needed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(needed, 1);
        _window = window;
        _needed = needed;
        _counts = new int[publishers][];
        for (var i = 0; i < publishers; i++) _counts[i] = needed == 1 ? [] : new int[window];
    }

    /// <summary>Records one first-time arrival at one subscriber; true when it was the last one the message needed.</summary>
    public bool Arrive(int publisher, long sequence)
    {
        if (_needed == 1) return true;
        if ((uint)publisher >= (uint)_counts.Length || sequence < 0) return false;
        ref var slot = ref _counts[publisher][(int)(sequence % _window)];
        if (Interlocked.Increment(ref slot) < _needed) return false;
        Volatile.Write(ref slot, 0);
        return true;
    }
}
