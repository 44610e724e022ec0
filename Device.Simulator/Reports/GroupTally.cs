namespace IotRealtime.Device.Simulator.Reports;

/// <summary>
/// Loss and duplication across a shared-subscription group: each message should reach exactly one member, so a
/// message no member has is lost, and every copy beyond the first (at one member or at several) is a duplicate.
/// </summary>
public readonly record struct GroupTally(long Distinct, long Lost, long Duplicates)
{
    public static GroupTally From(IReadOnlyList<SequenceTracker> members, IReadOnlyList<long> sentPerPublisher)
    {
        long distinct = 0, lost = 0, duplicates = 0;
        foreach (var member in members) duplicates += member.Duplicates;
        for (var p = 0; p < sentPerPublisher.Count; p++)
        {
            for (long s = 0; s < sentPerPublisher[p]; s++)
            {
                var copies = 0;
                foreach (var member in members)
                {
                    if (member.Contains(p, s)) copies++;
                }

                if (copies == 0)
                {
                    lost++;
                }
                else
                {
                    distinct++;
                    duplicates += copies - 1;
                }
            }
        }

        return new GroupTally(distinct, lost, duplicates);
    }
}
