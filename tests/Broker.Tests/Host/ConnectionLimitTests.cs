using IotRealtime.Broker.Host.Transport;
using IotRealtime.Hosting.Limits;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Tests.Host;

public sealed class ConnectionLimitTests
{
    [Fact]
    public void The_open_file_limit_is_read_from_proc_limits_and_the_default_cap_keeps_a_reserve_below_it()
    {
        var limits = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(limits,
            [
                "Limit                     Soft Limit           Hard Limit           Units",
                "Max processes             95000                95000                processes",
                "Max open files            1024                 20000                files",
            ]);
            Assert.Equal(1024, OpenFileLimit.Read(limits));
            File.WriteAllLines(limits, ["Max open files            unlimited            unlimited            files"]);
            Assert.Null(OpenFileLimit.Read(limits));
            Assert.Null(OpenFileLimit.Read(limits + ".missing"));
        }
        finally
        {
            File.Delete(limits);
        }

        Assert.Equal(768, OpenFileLimit.ConnectionCap(1024));
        Assert.Equal(19_000, OpenFileLimit.ConnectionCap(20_000));
        Assert.Equal(1_048_576 - 4096, OpenFileLimit.ConnectionCap(1_048_576));
        Assert.NotNull(OpenFileLimit.Read());
    }

    [Fact]
    public void Unset_the_cap_follows_the_open_file_limit_and_set_it_wins()
    {
        var time = new ManualTime();
        Assert.Equal(768, new ConnectionLimit(null, 1024, time, new LineLogger()).Max);
        Assert.Equal(50, new ConnectionLimit(50, 1024, time, new LineLogger()).Max);
        Assert.Null(new ConnectionLimit(null, null, time, new LineLogger()).Max);

        var warned = new LineLogger();
        _ = new ConnectionLimit(5000, 1024, time, warned);
        Assert.Contains(warned.Lines, l => l.StartsWith("Listeners:MaxConnections (5000) is above what the open-file limit 1024 leaves for connections (768)", StringComparison.Ordinal));
    }

    [Fact]
    public void Connections_over_the_cap_are_refused_counted_per_listener_and_logged_once_per_interval()
    {
        var time = new ManualTime();
        var log = new LineLogger();
        var limit = new ConnectionLimit(2, null, time, log);

        Assert.True(limit.TryAcquire("mqtt"));
        Assert.True(limit.TryAcquire("http"));
        for (var i = 0; i < 1000; i++) Assert.False(limit.TryAcquire(i % 2 == 0 ? "mqtt" : "https"));
        Assert.Equal(500, limit.Refused("mqtt"));
        Assert.Equal(500, limit.Refused("https"));
        Assert.Equal(0, limit.Refused("http"));
        Assert.Equal(2, limit.Open);
        Assert.Equal(["1 connections closed at accept since the last such line: Listeners:MaxConnections (2) reached"], log.Lines);

        time.Advance(ConnectionLimit.LogInterval);
        Assert.False(limit.TryAcquire("mqtts"));
        Assert.Equal("1000 connections closed at accept since the last such line: Listeners:MaxConnections (2) reached", log.Lines[^1]);
        Assert.Equal(2, log.Lines.Count);

        limit.Release();
        Assert.True(limit.TryAcquire("mqtt"));
        Assert.Equal(2, limit.Open);
    }

    sealed class ManualTime : TimeProvider
    {
        long _ticks = 1;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    sealed class LineLogger : ILogger<ConnectionLimit>
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
