using IotRealtime.Broker.Cluster;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>A peer's queue: bounded, ordered, never blocking; each overflow policy drops what it names and counts it.</summary>
public sealed class PeerQueueTests
{
    static PeerMessage M(int i) => new("q/" + i, [], 0, false, null, null, -1, null, null);

    [Theory]
    [InlineData(PeerOverflowPolicy.DropNew, new[] { 0, 1, 2 })]
    [InlineData(PeerOverflowPolicy.DropOldest, new[] { 2, 3, 4 })]
    public void A_full_queue_drops_by_its_policy_and_keeps_the_order_of_what_it_holds(PeerOverflowPolicy policy, int[] kept)
    {
        var queue = new PeerQueue(3, policy);
        var accepted = Enumerable.Range(0, 5).Select(i => queue.Enqueue(M(i))).ToArray();

        Assert.Equal([true, true, true, false, false], accepted);
        Assert.Equal(2, queue.Dropped);
        Assert.Equal(3, queue.Count);
        Assert.Equal(kept.Select(i => "q/" + i), queue.Take(10).Select(m => m.Topic));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void Take_hands_out_at_most_a_batch_oldest_first()
    {
        var queue = new PeerQueue(100, PeerOverflowPolicy.DropNew);
        for (var i = 0; i < 10; i++) queue.Enqueue(M(i));
        Assert.Equal(["q/0", "q/1", "q/2", "q/3"], queue.Take(4).Select(m => m.Topic));
        Assert.Equal(6, queue.Count);
        Assert.Equal(6, queue.Take(100).Length);
        Assert.Empty(queue.Take(100));
    }
}
