using IotRealtime.Telemetry.Sinks;

namespace IotRealtime.Telemetry.Tests.Sinks;

/// <summary>
/// What every <see cref="ITelemetrySink"/> must do, run against each implementation: a derived class per sink supplies
/// fresh storage per test (xunit makes one instance per test) and a way to read it back.
/// </summary>
public abstract class TelemetrySinkContract : IAsyncLifetime
{
    protected const string Topic = "telemetry";
    static readonly DateTimeOffset T0 = new(2026, 11, 30, 23, 59, 58, 125, TimeSpan.Zero);

    readonly List<ITelemetrySink> _sinks = [];

    /// <summary>A sink over this test's storage that stores offsets for <paramref name="consumerGroup"/>; not yet initialized.</summary>
    protected abstract Task<ITelemetrySink> CreateSinkAsync(string consumerGroup);

    /// <summary>Every stored reading of <paramref name="device"/>, in any order.</summary>
    protected abstract Task<IReadOnlyList<Reading>> ReadReadingsAsync(string device);

    /// <summary>Every stored parked payload, in any order.</summary>
    protected abstract Task<IReadOnlyList<ParkedPayload>> ReadParkedAsync();

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var sink in _sinks) await sink.DisposeAsync();
    }

    async Task<ITelemetrySink> SinkAsync(string consumerGroup = "group-a")
    {
        var sink = await CreateSinkAsync(consumerGroup);
        _sinks.Add(sink);
        await sink.InitializeAsync(CancellationToken.None);
        return sink;
    }

    static ReadingBatch Batch(IEnumerable<Reading> readings, params SourceOffset[] offsets)
    {
        var batch = new ReadingBatch();
        batch.Readings.AddRange(readings);
        batch.Offsets.AddRange(offsets);
        return batch;
    }

    /// <summary>Spans midnight, so a day-partitioned store meets two days; millisecond times; negative and fractional values.</summary>
    static List<Reading> Readings(string device, int count, int seed) =>
        Enumerable.Range(0, count).Select(i => new Reading(T0.AddMilliseconds(i * 250), device, i % 2 == 0 ? "temp" : "pos.lat", seed + i * 0.5 - 3)).ToList();

    static void AssertSameReadings(IEnumerable<Reading> expected, IEnumerable<Reading> actual)
    {
        static IOrderedEnumerable<Reading> Order(IEnumerable<Reading> r) => r.OrderBy(x => x.Time).ThenBy(x => x.Metric, StringComparer.Ordinal).ThenBy(x => x.Value);
        Assert.Equal(Order(expected).Select(r => (r.Time.UtcTicks, r.Device, r.Metric, r.Value)), Order(actual).Select(r => (r.Time.UtcTicks, r.Device, r.Metric, r.Value)));
    }

    [Fact]
    public async Task Written_readings_are_read_back_unchanged()
    {
        var sink = await SinkAsync();
        var d1 = Readings("d1", 20, 0);
        var d2 = Readings("d2", 7, 100);
        await sink.WriteAsync(Batch(d1.Concat(d2), new SourceOffset(Topic, 0, 27)), CancellationToken.None);

        AssertSameReadings(d1, await ReadReadingsAsync("d1"));
        AssertSameReadings(d2, await ReadReadingsAsync("d2"));
        Assert.Empty(await ReadReadingsAsync("d3"));
    }

    [Fact]
    public async Task A_batch_whose_offsets_are_stored_is_not_stored_again()
    {
        var sink = await SinkAsync();
        var first = Readings("d1", 10, 0);
        var second = Readings("d1", 10, 50).Select(r => r with { Time = r.Time.AddMinutes(10) }).ToList();
        await sink.WriteAsync(Batch(first, new SourceOffset(Topic, 0, 10), new SourceOffset(Topic, 1, 4)), CancellationToken.None);
        await sink.WriteAsync(Batch(first, new SourceOffset(Topic, 0, 10), new SourceOffset(Topic, 1, 4)), CancellationToken.None);
        await sink.WriteAsync(Batch(second, new SourceOffset(Topic, 0, 20)), CancellationToken.None);
        await sink.WriteAsync(Batch(second, new SourceOffset(Topic, 0, 20)), CancellationToken.None);

        AssertSameReadings(first.Concat(second), await ReadReadingsAsync("d1"));
    }

    [Fact]
    public async Task A_restarted_sink_skips_a_batch_stored_before_the_restart()
    {
        var readings = Readings("d1", 5, 0);
        await (await SinkAsync()).WriteAsync(Batch(readings, new SourceOffset(Topic, 2, 5)), CancellationToken.None);
        await (await SinkAsync()).WriteAsync(Batch(readings, new SourceOffset(Topic, 2, 5)), CancellationToken.None);

        AssertSameReadings(readings, await ReadReadingsAsync("d1"));
    }

    [Fact]
    public async Task Offsets_round_trip_per_consumer_group_and_only_advance()
    {
        var a = await SinkAsync("group-a");
        var b = await SinkAsync("group-b");
        Assert.Empty(await a.LoadOffsetsAsync("group-a", [Topic], CancellationToken.None));

        await a.WriteAsync(Batch(Readings("d1", 2, 0), new SourceOffset(Topic, 0, 10), new SourceOffset(Topic, 1, 5), new SourceOffset("other", 0, 7)), CancellationToken.None);
        await b.WriteAsync(Batch(Readings("d2", 2, 0), new SourceOffset(Topic, 0, 3)), CancellationToken.None);
        await a.WriteAsync(Batch(Readings("d1", 2, 9).Select(r => r with { Time = r.Time.AddHours(1) }), new SourceOffset(Topic, 0, 12)), CancellationToken.None);

        static IEnumerable<SourceOffset> Sorted(IReadOnlyList<SourceOffset> o) => o.OrderBy(x => x.Topic, StringComparer.Ordinal).ThenBy(x => x.Partition);
        Assert.Equal([new SourceOffset(Topic, 0, 12), new SourceOffset(Topic, 1, 5)], Sorted(await a.LoadOffsetsAsync("group-a", [Topic], CancellationToken.None)));
        Assert.Equal([new SourceOffset("other", 0, 7), new SourceOffset(Topic, 0, 12), new SourceOffset(Topic, 1, 5)], Sorted(await b.LoadOffsetsAsync("group-a", [Topic, "other"], CancellationToken.None)));
        Assert.Equal([new SourceOffset(Topic, 0, 3)], Sorted(await a.LoadOffsetsAsync("group-b", [Topic], CancellationToken.None)));
        Assert.Empty(await a.LoadOffsetsAsync("group-c", [Topic], CancellationToken.None));
    }

    [Fact]
    public async Task Parked_payloads_are_stored_with_their_reason_once()
    {
        var sink = await SinkAsync();
        var parked = new ParkedPayload(Topic, 3, 41, T0, "d9", "devices/d9/state", [0x7B, 0x00, 0xFF], "not valid JSON: test");
        var noDevice = new ParkedPayload(Topic, 3, 42, T0.AddSeconds(1), null, null, "hello"u8.ToArray(), "no device");
        var batch = Batch([], new SourceOffset(Topic, 3, 43));
        batch.Parked.AddRange([parked, noDevice]);
        await sink.WriteAsync(batch, CancellationToken.None);
        await sink.WriteAsync(batch, CancellationToken.None);

        var stored = (await ReadParkedAsync()).OrderBy(p => p.Offset).ToList();
        Assert.Equal(2, stored.Count);
        foreach (var (expected, actual) in new[] { parked, noDevice }.Zip(stored))
        {
            Assert.Equal((expected.Topic, expected.Partition, expected.Offset, expected.Time.UtcTicks, expected.Device, expected.MqttTopic, expected.Reason),
                (actual.Topic, actual.Partition, actual.Offset, actual.Time.UtcTicks, actual.Device, actual.MqttTopic, actual.Reason));
            Assert.Equal(expected.Payload, actual.Payload);
        }
        Assert.Equal([new SourceOffset(Topic, 3, 43)], await sink.LoadOffsetsAsync("group-a", [Topic], CancellationToken.None));
    }

    [Fact]
    public async Task Initialize_is_idempotent()
    {
        var sink = await SinkAsync();
        await sink.InitializeAsync(CancellationToken.None);
        var readings = Readings("d1", 3, 0);
        await sink.WriteAsync(Batch(readings, new SourceOffset(Topic, 0, 3)), CancellationToken.None);
        await sink.InitializeAsync(CancellationToken.None);
        AssertSameReadings(readings, await ReadReadingsAsync("d1"));
    }
}
