using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Tests;

public sealed class SequenceTrackerTests
{
    [Fact]
    public void Everything_sent_and_received_once_is_neither_lost_nor_duplicated()
    {
        var tracker = new SequenceTracker(2);
        for (var s = 0; s < 1000; s++)
        {
            Assert.True(tracker.Record(0, s));
            Assert.True(tracker.Record(1, s));
        }

        Assert.Equal(2000, tracker.Distinct);
        Assert.Equal(0, tracker.Duplicates);
        Assert.Equal(0, tracker.Lost([1000, 1000]));
    }

    [Fact]
    public void A_second_arrival_is_a_duplicate_and_not_counted_twice()
    {
        var tracker = new SequenceTracker(1);
        Assert.True(tracker.Record(0, 0));
        Assert.True(tracker.Record(0, 1));
        Assert.False(tracker.Record(0, 1));
        Assert.False(tracker.Record(0, 1));

        Assert.Equal(2, tracker.Distinct);
        Assert.Equal(2, tracker.Duplicates);
        Assert.Equal(0, tracker.Lost([2]));
    }

    [Fact]
    public void Gaps_are_lost_whatever_the_arrival_order()
    {
        var tracker = new SequenceTracker(2);
        foreach (var s in new long[] { 9, 0, 5, 3, 1 }) tracker.Record(0, s);
        tracker.Record(1, 0);

        // publisher 0 sent 0..9 and 2, 4, 6, 7, 8 never came; publisher 1 sent 0..2 and 1, 2 never came
        Assert.Equal(5 + 2, tracker.Lost([10, 3]));
        Assert.Equal(0, tracker.Duplicates);
    }

    [Fact]
    public void Messages_from_unknown_publishers_are_foreign_not_received()
    {
        var tracker = new SequenceTracker(1);
        Assert.False(tracker.Record(1, 0));
        Assert.False(tracker.Record(-1, 0));
        Assert.False(tracker.Record(0, -5));

        Assert.Equal(3, tracker.Foreign);
        Assert.Equal(0, tracker.Distinct);
    }

    [Fact]
    public void Sequences_far_beyond_the_initial_bitmap_are_tracked()
    {
        var tracker = new SequenceTracker(1);
        Assert.True(tracker.Record(0, 1_000_000));
        Assert.False(tracker.Record(0, 1_000_000));
        Assert.Equal(1_000_000, tracker.Lost([1_000_001]));
    }
}
