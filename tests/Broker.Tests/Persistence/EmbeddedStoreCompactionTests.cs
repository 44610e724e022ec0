using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>
/// Compaction does not stop changes: while the log is rewritten (paused here once it captured the live state) changes
/// go on being appended without waiting for it, and after a restart on the files every one of them is there — in the
/// new generation when the rewrite succeeds, in the current one when it fails (a real full disk).
/// </summary>
public sealed class EmbeddedStoreCompactionTests : IDisposable
{
    const int CompactAfter = 1024 * 1024;

    readonly string _directory = Directory.CreateTempSubdirectory("iotrt-compaction-").FullName;

    static EmbeddedBrokerStore Open(string directory, DurabilityPolicy durability) =>
        EmbeddedBrokerStore.Open(new StoreOptions { Directory = directory, Durability = durability, CompactAfterBytes = CompactAfter }, NullLoggerFactory.Instance);

    static MqttMessage Message(string topic, string payload, bool retain = false) =>
        new() { Topic = topic, Payload = Encoding.UTF8.GetBytes(payload), Retain = retain, QoS = MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce };

    static string[] LogFiles(string directory) => Directory.GetFiles(directory, "store-*").Select(f => Path.GetFileName(f)).Order().ToArray();

    /// <summary>Pauses the first compaction once it captured the live state, until released.</summary>
    sealed class CompactionPause : IDisposable
    {
        readonly TaskCompletionSource _captured = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly ManualResetEventSlim _release = new();
        int _calls;

        public Task Captured => _captured.Task;
        public bool TimedOut { get; private set; }

        public void Hook()
        {
            if (Interlocked.Increment(ref _calls) == 1)
            {
                _captured.TrySetResult();
                TimedOut = !_release.Wait(Timeouts.Default);
            }
        }

        public void Release() => _release.Set();

        public void Dispose()
        {
            _release.Set(); // never leave the writer thread paused, also when the test failed
            _release.Dispose();
        }
    }

    [Theory]
    [InlineData(DurabilityPolicy.Fsync)]
    [InlineData(DurabilityPolicy.Write)]
    public async Task Changes_made_while_the_log_is_rewritten_do_not_wait_for_it_and_are_in_the_new_generation(DurabilityPolicy durability)
    {
        using var pause = new CompactionPause();
        var store = Open(_directory, durability);
        var disposed = false;
        try
        {
            store.CompactionCaptured = pause.Hook;
            var payload = new string('x', 2000);
            store.SessionStarted("s", 3600, "user-s", null, 0);
            store.Subscribed("s", new StoredSubscription("a/#", 1, false, false, 0, 0, false));
            // 600 × about 4 KB pass 1 MB: after one of its writes the writer starts a compaction, and pauses in it
            for (var i = 1; i <= 600; i++)
            {
                store.RetainSet(Message("churn/" + (i % 10), payload + i, retain: true));
                store.Enqueued("s", new StoredDelivery { DeliveryId = i, Message = Message("q/" + i, payload), QoS = 1 });
                if (i <= 590)
                {
                    store.Completed("s", i);
                }
            }
            store.InflightChanged("s", 595, 7, StoredDeliveryState.AwaitingPubRec);
            await pause.Captured.WaitAsync(Timeouts.Default);

            // while the writer thread is held inside the compaction, every kind of change still returns at once
            var alsoToD = store.Load().Sessions["s"].Deliveries[600].Message; // already in the log: only its delivery record is written
            var last = await Task.Run(() =>
            {
                for (var i = 1; i <= 20; i++)
                {
                    store.RetainSet(Message("during/" + i, "d" + i, retain: true));
                }
                store.RetainClear("churn/3");
                store.SessionStarted("d", 60, null, Message("will/d", "gone", retain: false), 5);
                store.Subscribed("d", new StoredSubscription("b/#", 2, true, false, 1, 9, false));
                store.Subscribed("s", new StoredSubscription("c/+", 0, false, true, 0, 0, true));
                for (var i = 601; i <= 610; i++)
                {
                    store.Enqueued("s", new StoredDelivery { DeliveryId = i, Message = Message("q/" + i, "new" + i), QoS = 1 });
                }
                store.Enqueued("d", new StoredDelivery { DeliveryId = 611, Message = alsoToD, QoS = 1 });
                store.Completed("s", 591);
                store.InflightChanged("s", 596, 8, StoredDeliveryState.AwaitingPubAck);
                store.InboundQos2Added("s", 42);
                return store.SessionOffline("d", DateTimeOffset.UnixEpoch.AddDays(1), DateTimeOffset.UnixEpoch.AddDays(2));
            }).WaitAsync(Timeouts.Default);
            Assert.False(store.IsDurable(last), "a change made while the compaction is paused cannot have been written yet");

            pause.Release();
            await store.WaitDurableAsync(last).AsTask().WaitAsync(Timeouts.Default);
            Assert.False(pause.TimedOut, "the test did not release the compaction in time");
            await store.DisposeAsync();
            disposed = true;
            // the rewrite switched files (the churn written after it may have started another): the first generation is gone
            var log = Assert.Single(LogFiles(_directory));
            Assert.Matches(@"^store-\d{10}\.log$", log);
            Assert.NotEqual("store-0000000001.log", log);

            await using var reopened = Open(_directory, durability);
            var state = reopened.Load();
            Assert.Equal(
                Enumerable.Range(0, 10).Where(i => i != 3).Select(i => "churn/" + i).Concat(Enumerable.Range(1, 20).Select(i => "during/" + i)).Order(),
                state.Retained.Keys.Order());
            Assert.EndsWith("600", Encoding.UTF8.GetString(state.Retained["churn/0"].Payload.Span));
            Assert.Equal("d20", Encoding.UTF8.GetString(state.Retained["during/20"].Payload.Span));

            var s = state.Sessions["s"];
            Assert.Equal("user-s", s.Username);
            Assert.Equal(["a/#", "c/+"], s.Subscriptions.Keys.Order());
            Assert.True(s.Subscriptions["c/+"].Filtered);
            Assert.Equal(Enumerable.Range(592, 19).Select(i => (long)i), s.Deliveries.Keys);
            Assert.Equal(((ushort)7, StoredDeliveryState.AwaitingPubRec), (s.Deliveries[595].PacketId, s.Deliveries[595].State));
            Assert.Equal(((ushort)8, StoredDeliveryState.AwaitingPubAck), (s.Deliveries[596].PacketId, s.Deliveries[596].State));
            Assert.Equal(StoredDeliveryState.Queued, s.Deliveries[597].State);
            Assert.Equal("new610", Encoding.UTF8.GetString(s.Deliveries[610].Message.Payload.Span));
            Assert.Equal([(ushort)42], s.InboundQos2);

            var d = state.Sessions["d"];
            Assert.False(d.Online);
            Assert.Equal(60u, d.ExpiryInterval);
            Assert.Equal("will/d", d.Will?.Topic);
            Assert.Equal(DateTimeOffset.UnixEpoch.AddDays(2), d.WillDueAt);
            Assert.Equal(new StoredSubscription("b/#", 2, true, false, 1, 9, false), d.Subscriptions["b/#"]);
            Assert.Equal("q/600", Assert.Single(d.Deliveries.Values).Message.Topic);
        }
        finally
        {
            pause.Release();
            if (!disposed) await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task Changes_made_while_a_rewrite_fails_on_a_full_disk_stay_in_the_current_generation()
    {
        // 1.5 MB: the log passes 1 MB of live state, and its rewrite (as large again) cannot fit beside it
        using var disk = TmpfsMount.Create("1536k");
        var directory = Path.Combine(disk.Path, "store");
        using var pause = new CompactionPause();
        var store = Open(directory, DurabilityPolicy.Fsync);
        var disposed = false;
        try
        {
            store.CompactionCaptured = pause.Hook;
            var payload = new string('r', 10 * 1024);
            // 110 distinct retained messages of 10 KB: all of it is live, and the log passes 1 MB
            long filled = 0;
            for (var i = 0; i < 110; i++)
            {
                filled = store.RetainSet(Message("fill/" + i, payload, retain: true));
            }
            await pause.Captured.WaitAsync(Timeouts.Default);

            var last = await Task.Run(() =>
            {
                long position = 0;
                for (var i = 0; i < 10; i++)
                {
                    position = store.RetainSet(Message("during/" + i, "d" + i, retain: true));
                }
                return position;
            }).WaitAsync(Timeouts.Default);
            Assert.False(store.IsDurable(last), "a change made while the compaction is paused cannot have been written yet");

            pause.Release();
            await store.WaitDurableAsync(last).AsTask().WaitAsync(Timeouts.Default);
            Assert.False(pause.TimedOut, "the test did not release the compaction in time");
            Assert.True(store.IsDurable(filled));
            Assert.True(store.Healthy, "a failed compaction leaves the store writing to its current log");
            Assert.Equal(["store-0000000001.log"], LogFiles(directory)); // the unfinished rewrite was removed
            await store.DisposeAsync();
            disposed = true;

            await using var reopened = Open(directory, DurabilityPolicy.Fsync);
            var retained = reopened.Load().Retained;
            Assert.Equal(120, retained.Count);
            Assert.All(Enumerable.Range(0, 110), i => Assert.Equal(10 * 1024, retained["fill/" + i].Payload.Length));
            Assert.All(Enumerable.Range(0, 10), i => Assert.Equal("d" + i, Encoding.UTF8.GetString(retained["during/" + i].Payload.Span)));
        }
        finally
        {
            pause.Release();
            if (!disposed) await store.DisposeAsync();
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
