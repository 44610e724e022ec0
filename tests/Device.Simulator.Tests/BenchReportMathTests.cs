using IotRealtime.Device.Simulator.Reports;
using IotRealtime.Device.Simulator.Scenarios.Bench;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>The arithmetic behind the fanout, p2p, shared and latency reports.</summary>
public sealed class BenchReportMathTests
{
    [Fact]
    public void Fan_out_message_completes_only_at_its_last_subscriber()
    {
        var completion = new DeliveryCompletion(publishers: 1, window: 4, needed: 3);

        Assert.False(completion.Arrive(0, 0));
        Assert.False(completion.Arrive(0, 0));
        Assert.True(completion.Arrive(0, 0));
        // The slot is reused by sequence 4 (same ring position) and counts from zero again.
        Assert.False(completion.Arrive(0, 4));
        Assert.False(completion.Arrive(0, 4));
        Assert.True(completion.Arrive(0, 4));
    }

    [Fact]
    public void Single_delivery_completes_at_once_and_unknown_publishers_never_complete()
    {
        Assert.True(new DeliveryCompletion(2, 10, 1).Arrive(1, 123));
        Assert.False(new DeliveryCompletion(2, 10, 2).Arrive(5, 0));
    }

    [Fact]
    public void Group_tally_counts_each_message_once_across_members()
    {
        var a = new SequenceTracker(2);
        var b = new SequenceTracker(2);
        a.Record(0, 0);
        b.Record(0, 1);
        a.Record(1, 0);
        b.Record(1, 0); // the same message at two members: one duplicate
        a.Record(0, 2);
        a.Record(0, 2); // twice at one member: one more duplicate
        // publisher 0 sent 0..3 (3 never arrived), publisher 1 sent 0

        var tally = GroupTally.From([a, b], [4, 1]);

        Assert.Equal(4, tally.Distinct);
        Assert.Equal(1, tally.Lost);
        Assert.Equal(2, tally.Duplicates);
    }

    [Fact]
    public void Sequence_tracker_contains_only_what_arrived()
    {
        var tracker = new SequenceTracker(1);
        tracker.Record(0, 70);
        Assert.True(tracker.Contains(0, 70));
        Assert.False(tracker.Contains(0, 69));
        Assert.False(tracker.Contains(0, 100_000));
        Assert.False(tracker.Contains(3, 70));
    }

    [Fact]
    public void Deliveries_and_messages_per_second_differ_by_the_fan_out()
    {
        Assert.Equal(30_000, BenchReport.Expected(300, 100));
        Assert.Equal(1_500, BenchReport.MessagesPerSecond(150_000, 100));
        Assert.Equal(42, BenchReport.MessagesPerSecond(42, 1));
    }

    [Fact]
    public void Latency_in_microseconds_reads_the_histogram()
    {
        var histogram = LatencyPercentiles.CreateHistogram();
        for (var us = 1; us <= 1000; us++) LatencyPercentiles.Record(histogram, us);

        var latency = LatencyMicros.From(histogram);

        Assert.Equal(1000, latency.Count);
        Assert.Equal(500, latency.P50);
        Assert.Equal(990, latency.P99);
        Assert.Equal(1000, latency.Max);
        Assert.Equal(0, LatencyMicros.From(LatencyPercentiles.CreateHistogram()).Count);
    }

    [Theory]
    [InlineData(5000, 0, 1)]
    [InlineData(5000, 1000, 5001)]
    [InlineData(1000, 2500, 2501)]
    public void Open_loop_pacer_is_due_rate_times_elapsed_plus_the_first(int rate, int elapsedMs, long due) =>
        Assert.Equal(due, OpenLoopPacer.Due(rate, TimeSpan.FromMilliseconds(elapsedMs)));

    [Fact]
    public void Topologies_name_filters_and_deliveries()
    {
        Assert.True(SimulatorOptions.TryParse(["fanout", "--subscribers", "7"], out var fanout, out var e1), e1);
        var f = BenchTopology.From(fanout);
        Assert.Equal((1, 7, 7, "bench/0"), (f.Publishers, f.Subscribers, f.DeliveriesPerMessage, f.Filter(3)));

        Assert.True(SimulatorOptions.TryParse(["p2p", "--publishers", "4"], out var p2p, out var e2), e2);
        var p = BenchTopology.From(p2p);
        Assert.Equal((4, 4, "bench/2"), (p.Publishers, p.Subscribers, p.Filter(2)));
        Assert.True(p.Expects(2, 2));
        Assert.False(p.Expects(2, 1));

        Assert.True(SimulatorOptions.TryParse(["shared", "--subscribers", "3"], out var shared, out var e3), e3);
        Assert.Equal(BenchTopology.SharedFilter, BenchTopology.From(shared).Filter(1));
        Assert.True(BenchTopology.From(shared).SharedGroup);

        Assert.False(SimulatorOptions.TryParse(["fanout", "--subscribers", "0"], out _, out var e4));
        Assert.Contains("--subscribers", e4, StringComparison.Ordinal);
    }
}
