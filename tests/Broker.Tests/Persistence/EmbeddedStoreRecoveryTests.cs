using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>The embedded log after crashes: torn and corrupt tails are cut, never replayed; compaction keeps it bounded.</summary>
public sealed class EmbeddedStoreRecoveryTests : IDisposable
{
    readonly string _directory = Directory.CreateTempSubdirectory("iotrt-recovery-").FullName;

    EmbeddedBrokerStore Open(long compactAfter = 64L * 1024 * 1024) =>
        EmbeddedBrokerStore.Open(new StoreOptions { Directory = _directory, Durability = DurabilityPolicy.Write, CompactAfterBytes = compactAfter }, NullLoggerFactory.Instance);

    string LogFile => Assert.Single(Directory.GetFiles(_directory, "store-*.log"));

    static MqttMessage Retained(string topic, string payload) => new() { Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), Retain = true };

    async Task WriteAndCloseAsync(Action<EmbeddedBrokerStore> changes)
    {
        var store = Open();
        changes(store);
        await store.WaitDurableAsync(store.Position).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        await store.DisposeAsync();
    }

    [Fact]
    public async Task Torn_last_record_is_cut_and_everything_before_it_survives()
    {
        await WriteAndCloseAsync(s =>
        {
            s.RetainSet(Retained("t/1", "kept"));
            s.RetainSet(Retained("t/2", "torn"));
        });
        var length = new FileInfo(LogFile).Length;
        using (var file = new FileStream(LogFile, FileMode.Open))
        {
            file.SetLength(length - 3); // the crash hit in the middle of the last write
        }

        await using var reopened = Open();
        var state = reopened.Load();
        Assert.Equal(["t/1"], state.Retained.Keys);
        Assert.True(new FileInfo(LogFile).Length < length - 3, "the torn tail is removed from the file");
        // and the store goes on working after the cut
        reopened.RetainSet(Retained("t/3", "after"));
        await reopened.WaitDurableAsync(reopened.Position);
    }

    [Fact]
    public async Task Corrupt_record_is_detected_by_its_checksum_and_cut_with_what_follows()
    {
        await WriteAndCloseAsync(s =>
        {
            s.RetainSet(Retained("c/1", "good"));
            s.RetainSet(Retained("c/2", "flipped"));
            s.RetainSet(Retained("c/3", "after the damage"));
        });
        var bytes = File.ReadAllBytes(LogFile);
        var at = Encoding.UTF8.GetBytes("flipped");
        var index = bytes.AsSpan().IndexOf(at);
        Assert.True(index > 0);
        bytes[index] ^= 0xFF;
        File.WriteAllBytes(LogFile, bytes);

        await using var reopened = Open();
        Assert.Equal(["c/1"], reopened.Load().Retained.Keys);
    }

    [Fact]
    public async Task Garbage_after_the_last_record_is_cut()
    {
        await WriteAndCloseAsync(s => s.RetainSet(Retained("g/1", "good")));
        await File.AppendAllTextAsync(LogFile, "this is not a record at all, just noise from a broken disk");
        await using var reopened = Open();
        Assert.Equal(["g/1"], reopened.Load().Retained.Keys);
    }

    [Fact]
    public async Task Log_is_compacted_under_churn_and_keeps_only_live_state()
    {
        var store = Open(compactAfter: 1024 * 1024);
        var payload = new string('x', 2000);
        store.SessionStarted("s", 3600, null, null, 0);
        for (var i = 1; i <= 3000; i++)
        {
            store.RetainSet(Retained("churn/" + (i % 10), payload + i));
            store.Enqueued("s", new StoredDelivery { DeliveryId = i, Message = Retained("q", payload), QoS = 1 });
            if (i < 2990)
            {
                store.Completed("s", i);
            }
        }
        await store.WaitDurableAsync(store.Position).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        // 3000 × ~4 KB were written; only 10 retained and 11 queued messages are live
        await Wait.UntilAsync(() => new FileInfo(LogFile).Length < 1024 * 1024, TimeSpan.FromSeconds(30), "the log to be rewritten below 1 MB");
        await store.DisposeAsync();

        await using var reopened = Open();
        var state = reopened.Load();
        Assert.Equal(10, state.Retained.Count);
        Assert.EndsWith("3000", Encoding.UTF8.GetString(state.Retained["churn/0"].Payload.Span));
        Assert.Equal(Enumerable.Range(2990, 11).Select(i => (long)i), state.Sessions["s"].Deliveries.Keys);
    }

    [Fact]
    public async Task A_log_reopened_over_the_threshold_is_compacted_at_its_first_flush_not_after_growing_fourfold()
    {
        var payload = new string('x', 2000);
        var store = Open();
        for (var i = 1; i <= 2000; i++)
        {
            store.RetainSet(Retained("churn/" + (i % 10), payload + i));
        }
        await store.WaitDurableAsync(store.Position).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await store.DisposeAsync();
        Assert.True(new FileInfo(LogFile).Length > 2 * 1024 * 1024, "the churn should have written over 2 MB");

        // a restart (as after a crash) with a 1 MB threshold: 10 retained messages are live, about 20 KB
        var reopened = Open(compactAfter: 1024 * 1024);
        reopened.RetainSet(Retained("after/restart", "1"));
        await reopened.WaitDurableAsync(reopened.Position).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        await Wait.UntilAsync(() => new FileInfo(LogFile).Length < 1024 * 1024, TimeSpan.FromSeconds(30), "the reopened log to be rewritten below 1 MB");
        await reopened.DisposeAsync();

        await using var again = Open();
        Assert.Equal(11, again.Load().Retained.Count);
    }

    [Fact]
    public async Task Unreadable_store_file_is_set_aside_and_the_broker_starts_empty_instead_of_crash_looping()
    {
        await WriteAndCloseAsync(s => s.RetainSet(Retained("h/1", "x")));
        var original = LogFile;
        var bytes = File.ReadAllBytes(original);
        bytes[0] = (byte)'X';
        File.WriteAllBytes(original, bytes);

        await using var reopened = Open();
        Assert.Empty(reopened.Load().Retained);
        var aside = Assert.Single(Directory.GetFiles(_directory, "store-*.log.unreadable-*"));
        Assert.Equal(bytes, File.ReadAllBytes(aside)); // kept byte for byte for inspection
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
