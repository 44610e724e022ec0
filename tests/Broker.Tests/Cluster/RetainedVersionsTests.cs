using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>The last-writer rule for retained topics: (accept time, node id), clears included.</summary>
public sealed class RetainedVersionsTests
{
    static readonly DateTimeOffset T0 = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

    static MqttMessage Message(string payload, int ms) =>
        new() { Topic = "t", Payload = System.Text.Encoding.UTF8.GetBytes(payload), Retain = true, ReceivedAt = T0.AddMilliseconds(ms) };

    [Fact]
    public void An_older_peer_write_after_a_newer_local_one_is_not_stored()
    {
        var versions = new RetainedVersions();
        var stored = new List<string>();
        void Store(MqttMessage m) => stored.Add(System.Text.Encoding.UTF8.GetString(m.Payload.Span));
        var local = Message("local", 20);
        versions.Local(local, RetainedStamp.Of(local.ReceivedAt, "b"), Store);

        Assert.False(versions.Remote(Message("older", 10), RetainedStamp.Of(T0.AddMilliseconds(10), "a"), Store));
        Assert.True(versions.Remote(Message("newer", 30), RetainedStamp.Of(T0.AddMilliseconds(30), "a"), Store));
        Assert.Equal(["newer"], stored);
    }

    [Fact]
    public void The_same_accept_time_is_decided_by_the_greater_node_id()
    {
        var versions = new RetainedVersions();
        var stored = new List<string>();
        void Store(MqttMessage m) => stored.Add(System.Text.Encoding.UTF8.GetString(m.Payload.Span));
        Assert.True(versions.Remote(Message("from-b", 10), RetainedStamp.Of(T0.AddMilliseconds(10), "b"), Store));
        Assert.False(versions.Remote(Message("from-a", 10), RetainedStamp.Of(T0.AddMilliseconds(10), "a"), Store));
        Assert.True(versions.Remote(Message("from-c", 10), RetainedStamp.Of(T0.AddMilliseconds(10), "c"), Store));
        Assert.Equal(["from-b", "from-c"], stored);
    }

    [Fact]
    public void A_local_write_that_loses_puts_the_winner_back_and_a_clear_is_not_undone_by_an_older_set()
    {
        var versions = new RetainedVersions();
        var stored = new List<string>();
        void Store(MqttMessage m) => stored.Add(System.Text.Encoding.UTF8.GetString(m.Payload.Span));
        Assert.True(versions.Remote(Message("", 50), RetainedStamp.Of(T0.AddMilliseconds(50), "a"), Store));
        var late = Message("local-older", 40);
        versions.Local(late, RetainedStamp.Of(late.ReceivedAt, "b"), Store);
        Assert.False(versions.Remote(Message("set-older", 45), RetainedStamp.Of(T0.AddMilliseconds(45), "c"), Store));
        // the clear was stored, then stored again in place of the losing local set
        Assert.Equal(["", ""], stored);
    }
}
