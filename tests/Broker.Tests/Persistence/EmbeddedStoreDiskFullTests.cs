using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>
/// The embedded store on a file system that fills up (a small tmpfs): the first failed write fails the store for good,
/// and no position past the last confirmed write is ever reported durable, however many flushes run after it.
/// </summary>
public sealed class EmbeddedStoreDiskFullTests
{
    const int PayloadBytes = 10 * 1024;

    static MqttMessage Retained(string topic, int bytes) => new()
    {
        Topic = topic,
        Payload = Encoding.UTF8.GetBytes(topic.PadRight(bytes, '.')),
        Retain = true,
    };

    static EmbeddedBrokerStore Open(string directory, DurabilityPolicy durability) =>
        EmbeddedBrokerStore.Open(new StoreOptions { Directory = directory, Durability = durability }, NullLoggerFactory.Instance);

    [Theory]
    [InlineData(DurabilityPolicy.Fsync)]
    [InlineData(DurabilityPolicy.Write)]
    public async Task A_store_whose_write_failed_never_reports_a_later_position_durable(DurabilityPolicy durability)
    {
        using var disk = TmpfsMount.Create("256k");
        var directory = Path.Combine(disk.Path, "store");
        var store = Open(directory, durability);
        var disposed = false;
        try
        {
            var confirmed = new List<string>();
            long lastConfirmed = 0;
            IOException? failure = null;
            // 256 KB hold about 25 records of 10 KB; 100 bound the loop
            for (var i = 0; i < 100 && failure is null; i++)
            {
                var topic = $"fill/{i}";
                var position = store.RetainSet(Retained(topic, PayloadBytes));
                try
                {
                    await store.WaitDurableAsync(position).AsTask().WaitAsync(Timeouts.Default);
                    confirmed.Add(topic);
                    lastConfirmed = position;
                }
                catch (IOException ex)
                {
                    failure = ex;
                }
            }
            Assert.True(failure is not null, $"a {disk.Size} file system took 100 records of {PayloadBytes} bytes without a write failing");
            Assert.False(store.Healthy);
            Assert.NotEmpty(confirmed);
            Assert.True(store.IsDurable(lastConfirmed), "what was confirmed before the failure stays durable");

            // small changes after the failure: each wakes the writer thread, none may become durable
            var later = Enumerable.Range(0, 20).Select(i => store.RetainSet(Retained($"after/{i}", 16))).ToList();
            foreach (var position in later)
            {
                Assert.False(store.IsDurable(position), $"position {position}, reported after the failure, is durable");
                await Assert.ThrowsAsync<IOException>(() => store.WaitDurableAsync(position).AsTask().WaitAsync(Timeouts.Default));
            }

            // closing runs the writer's last flush over everything reported: still nothing past the failure is durable
            await store.DisposeAsync();
            disposed = true;
            Assert.True(store.IsDurable(lastConfirmed));
            Assert.True(later.All(p => !store.IsDurable(p)), "closing made a position reported after the failure durable");
            Assert.False(store.IsDurable(lastConfirmed + 1), "closing made the failed write durable");

            // the log holds every confirmed change, and nothing reported after the failure
            await using var reopened = Open(directory, durability);
            var retained = reopened.Load().Retained;
            Assert.All(confirmed, topic => Assert.True(retained.ContainsKey(topic), $"{topic} was confirmed durable but is not in the reopened store"));
            Assert.DoesNotContain(retained.Keys, topic => topic.StartsWith("after/", StringComparison.Ordinal));
            Assert.All(confirmed, topic => Assert.Equal(Retained(topic, PayloadBytes).Payload.ToArray(), retained[topic].Payload.ToArray()));
        }
        finally
        {
            if (!disposed) await store.DisposeAsync();
        }
    }
}
