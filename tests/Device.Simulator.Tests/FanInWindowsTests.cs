using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Tests;

public sealed class FanInWindowsTests
{
    static int Credits(FanInFlow flow)
    {
        var n = 0;
        while (flow.TryTake()) n++;
        return n;
    }

    [Fact]
    public void A_publisher_ahead_window_reopens_by_the_newest_arrival_so_lost_messages_do_not_hold_it()
    {
        using var windows = FanInWindows.Ahead(publishers: 2, ahead: 3, messages: 100);
        Assert.True(windows.PerPublisher);
        Assert.Equal(3, Credits(windows.For(0)));
        Assert.Equal(3, Credits(windows.For(1)));

        // Publisher 0 sent 0, 1, 2; only 2 arrived: 0 and 1 are passed over (lost), all three settle.
        windows.Arrived(0, 2);
        windows.Settle(1);

        Assert.Equal(3, Credits(windows.For(0)));
        Assert.Equal(0, Credits(windows.For(1)));
        Assert.Equal(2, windows.Newest(0));
        Assert.Equal(-1, windows.Newest(1));
    }

    [Fact]
    public void An_older_or_repeated_arrival_settles_nothing_more()
    {
        using var windows = FanInWindows.Ahead(publishers: 1, ahead: 10, messages: 100);
        Credits(windows.For(0));

        windows.Arrived(0, 4);
        windows.Arrived(0, 3);
        windows.Arrived(0, 4);
        windows.Settle(3);

        Assert.Equal(5, Credits(windows.For(0)));
    }

    [Fact]
    public void The_shared_loop_gives_back_one_credit_per_arrival_to_every_publisher_alike()
    {
        using var windows = FanInWindows.Shared(publishers: 2, inflight: 4, messages: 100);
        Assert.False(windows.PerPublisher);
        Assert.Same(windows.For(0), windows.For(1));
        Assert.Equal(4, Credits(windows.For(0)));

        windows.Arrived(1, 7);
        windows.Settle(2);

        Assert.Equal(2, Credits(windows.For(1)));
        Assert.Equal(7, windows.Newest(1));
    }

    [Fact]
    public void Publishers_with_their_own_windows_share_one_message_budget()
    {
        using var windows = FanInWindows.Ahead(publishers: 2, ahead: 10, messages: 3);

        Assert.True(windows.For(0).TryClaim());
        Assert.True(windows.For(1).TryClaim());
        Assert.True(windows.For(0).TryClaim());
        Assert.False(windows.For(1).TryClaim());
        Assert.True(windows.For(0).Exhausted);
    }
}
