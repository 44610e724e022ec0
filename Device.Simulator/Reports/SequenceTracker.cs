namespace IotRealtime.Device.Simulator.Reports;

/// <summary>
/// Which sequence numbers arrived from each publisher, one bit each, so that loss and duplication are exact
/// whatever the arrival order. Used by one reader; not thread-safe.
/// </summary>
public sealed class SequenceTracker(int publishers)
{
    readonly ulong[][] _seen = CreateBitmaps(publishers);
    readonly long[] _distinct = new long[publishers];

    public long Distinct { get; private set; }
    public long Duplicates { get; private set; }

    /// <summary>Messages whose publisher id or sequence number no publisher of this run could have sent.</summary>
    public long Foreign { get; private set; }

    /// <summary>Records one arrival; true the first time this (publisher, sequence) is seen.</summary>
    public bool Record(int publisher, long sequence)
    {
        if ((uint)publisher >= (uint)_seen.Length || sequence is < 0 or > int.MaxValue * 64L)
        {
            Foreign++;
            return false;
        }

        var words = _seen[publisher];
        var word = (int)(sequence >> 6);
        if (word >= words.Length)
        {
            Array.Resize(ref words, Math.Max(word + 1, words.Length * 2));
            _seen[publisher] = words;
        }

        var bit = 1UL << (int)(sequence & 63);
        if ((words[word] & bit) != 0)
        {
            Duplicates++;
            return false;
        }

        words[word] |= bit;
        _distinct[publisher]++;
        Distinct++;
        return true;
    }

    /// <summary>Whether (publisher, sequence) has arrived at least once.</summary>
    public bool Contains(int publisher, long sequence)
    {
        if ((uint)publisher >= (uint)_seen.Length || sequence < 0) return false;
        var words = _seen[publisher];
        var word = sequence >> 6;
        return word < words.Length && (words[word] & (1UL << (int)(sequence & 63))) != 0;
    }

    /// <summary>Messages sent (sequences 0 .. sent[p] − 1 of each publisher p) that never arrived.</summary>
    public long Lost(IReadOnlyList<long> sentPerPublisher)
    {
        long lost = 0;
        for (var p = 0; p < sentPerPublisher.Count && p < _seen.Length; p++)
        {
            var words = _seen[p];
            var sent = sentPerPublisher[p];
            for (long s = 0; s < sent; s++)
            {
                var word = (int)(s >> 6);
                if (word >= words.Length || (words[word] & (1UL << (int)(s & 63))) == 0) lost++;
            }
        }

        return lost;
    }

    static ulong[][] CreateBitmaps(int publishers)
    {
        var bitmaps = new ulong[publishers][];
        for (var i = 0; i < publishers; i++) bitmaps[i] = new ulong[16];
        return bitmaps;
    }
}
