namespace IotRealtime.Device.Simulator.Fleet.Raw;

/// <summary>
/// The one timer of a raw fleet process: a hashed wheel of device indexes (4 bytes per scheduled device, no timer
/// object per device). The caller's due-time array is the truth; an entry whose device was rescheduled elsewhere is
/// dropped when its slot comes round, so rescheduling costs one append and no search.
/// </summary>
public sealed class TimerWheel
{
    readonly List<int>[] _slots;
    readonly long _tickMs;
    List<int> _spare = [];
    long _tick;

    public TimerWheel(int slots, long tickMs, long nowMs)
    {
        _slots = new List<int>[slots];
        for (var i = 0; i < slots; i++) _slots[i] = [];
        _tickMs = tickMs;
        _tick = nowMs / tickMs;
    }

    /// <summary>Files <paramref name="device"/> under <paramref name="dueMs"/> (already written to the due array); past times fire on the next advance.</summary>
    public void Schedule(int device, long dueMs)
    {
        if (dueMs == long.MaxValue) return;
        var tick = Math.Max(dueMs / _tickMs, _tick + 1);
        _slots[(int)(tick % _slots.Length)].Add(device);
    }

    /// <summary>
    /// Runs every tick up to <paramref name="nowMs"/>: a device whose due time has come is marked unscheduled
    /// (long.MaxValue) and handed to <paramref name="fire"/>, which may schedule it again.
    /// </summary>
    public void Advance(long nowMs, long[] due, Action<int> fire)
    {
        var target = nowMs / _tickMs;
        while (_tick < target)
        {
            _tick++;
            var index = (int)(_tick % _slots.Length);
            var slot = _slots[index];
            if (slot.Count == 0) continue;
            // Swapped out so that devices scheduled while this slot runs land in a fresh list.
            _slots[index] = _spare;
            foreach (var device in slot)
            {
                var dueMs = due[device];
                if (dueMs == long.MaxValue) continue;
                var dueTick = dueMs / _tickMs;
                if (dueTick <= _tick)
                {
                    due[device] = long.MaxValue;
                    fire(device);
                }
                else if (dueTick % _slots.Length == index)
                {
                    _slots[index].Add(device);
                }
            }

            slot.Clear();
            _spare = slot;
        }
    }
}
