using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>
/// The one contract every <see cref="IBrokerStore"/> passes: what was recorded (and reported durable) is what
/// <see cref="IBrokerStore.Load"/> gives back after the store is reopened.
/// </summary>
public abstract class BrokerStoreContractTests : IAsyncLifetime
{
    protected IBrokerStore Store { get; private set; } = null!;

    /// <summary>Opens the store under test; called again by <see cref="ReopenAsync"/> after the previous instance is disposed.</summary>
    protected abstract IBrokerStore Open();

    /// <summary>Closes the store and opens it again on the same data: a restart.</summary>
    protected virtual async Task<StoredState> ReopenAsync()
    {
        await Store.DisposeAsync();
        Store = Open();
        return Store.Load();
    }

    public Task InitializeAsync()
    {
        Store = Open();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Store.DisposeAsync();

    static MqttMessage Message(string topic, string payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, bool retain = false) => new()
    {
        Topic = topic,
        Payload = Encoding.UTF8.GetBytes(payload),
        QoS = qos,
        Retain = retain,
        ContentType = "text/plain",
        PublisherClientId = "publisher",
        ReceivedAt = new DateTimeOffset(2026, 11, 23, 8, 0, 0, TimeSpan.Zero),
        ExpiresAt = new DateTimeOffset(2026, 11, 24, 8, 0, 0, TimeSpan.Zero),
    };

    async Task<StoredState> DurableReopenAsync()
    {
        await Store.WaitDurableAsync(Store.Position).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        return await ReopenAsync();
    }

    [Fact]
    public async Task Retained_messages_are_set_replaced_and_cleared()
    {
        Store.RetainSet(Message("a/1", "one", retain: true));
        Store.RetainSet(Message("a/2", "two", retain: true));
        Store.RetainSet(Message("a/1", "newer", retain: true));
        Store.RetainSet(Message("a/2", "", retain: true)); // an empty payload clears
        Store.RetainSet(Message("a/3", "three", retain: true));
        Store.RetainClear("a/3");

        var state = await DurableReopenAsync();
        var retained = Assert.Single(state.Retained);
        Assert.Equal("a/1", retained.Key);
        Assert.Equal("newer", Encoding.UTF8.GetString(retained.Value.Payload.Span));
        Assert.Equal("text/plain", retained.Value.ContentType);
        Assert.Equal(new DateTimeOffset(2026, 11, 24, 8, 0, 0, TimeSpan.Zero), retained.Value.ExpiresAt);
    }

    [Fact]
    public async Task Session_keeps_subscriptions_queue_order_inflight_state_and_inbound_qos2_ids()
    {
        Store.SessionStarted("dev", 3600, "user", Message("will/dev", "gone"), 5);
        Store.Subscribed("dev", new StoredSubscription("cmd/#", 2, false, true, 1, 7, false));
        Store.Subscribed("dev", new StoredSubscription("$share/g/jobs/+", 1, false, false, 0, 0, false));
        Store.Subscribed("dev", new StoredSubscription("tmp", 0, false, false, 0, 0, false));
        Store.Unsubscribed("dev", "tmp");
        var shared = Message("cmd/a", "shared by two");
        for (var i = 1; i <= 4; i++)
        {
            Store.Enqueued("dev", new StoredDelivery { DeliveryId = i, Message = i == 2 ? shared : Message("cmd/x", $"m{i}"), QoS = 1, SubscriptionIds = [7] });
        }
        Store.Enqueued("other-session-not-started", new StoredDelivery { DeliveryId = 50, Message = shared, QoS = 1 });
        Store.InflightChanged("dev", 1, 10, StoredDeliveryState.AwaitingPubAck);
        Store.InflightChanged("dev", 2, 11, StoredDeliveryState.AwaitingPubRec);
        Store.InflightChanged("dev", 2, 11, StoredDeliveryState.AwaitingPubComp);
        Store.Completed("dev", 1);
        Store.InboundQos2Added("dev", 42);
        Store.InboundQos2Added("dev", 43);
        Store.InboundQos2Released("dev", 42);
        var at = new DateTimeOffset(2026, 11, 23, 9, 0, 0, TimeSpan.Zero);
        Store.SessionOffline("dev", at, at.AddSeconds(5));

        var state = await DurableReopenAsync();
        var session = Assert.Single(state.Sessions).Value;
        Assert.Equal(("dev", 3600u, "user"), (session.ClientId, session.ExpiryInterval, session.Username));
        Assert.False(session.Online);
        Assert.Equal(at, session.DisconnectedAt);
        Assert.Equal(at.AddSeconds(5), session.WillDueAt);
        Assert.Equal("will/dev", session.Will?.Topic);
        Assert.Equal(5u, session.WillDelaySeconds);
        Assert.Equal(["$share/g/jobs/+", "cmd/#"], session.Subscriptions.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new StoredSubscription("cmd/#", 2, false, true, 1, 7, false), session.Subscriptions["cmd/#"]);
        Assert.Equal([2L, 3L, 4L], session.Deliveries.Keys);
        var inflight = session.Deliveries[2];
        Assert.Equal((11, StoredDeliveryState.AwaitingPubComp), (inflight.PacketId, inflight.State));
        Assert.Equal("shared by two", Encoding.UTF8.GetString(inflight.Message.Payload.Span));
        Assert.Equal(StoredDeliveryState.Queued, session.Deliveries[3].State);
        Assert.Equal([7u], session.Deliveries[3].SubscriptionIds!);
        Assert.Equal([(ushort)43], session.InboundQos2);
        Assert.True(state.NextDeliveryId > 4);
    }

    [Fact]
    public async Task Ended_session_is_gone_and_a_restarted_one_begins_empty()
    {
        Store.SessionStarted("a", 60, null, null, 0);
        Store.Subscribed("a", new StoredSubscription("x", 1, false, false, 0, 0, false));
        Store.Enqueued("a", new StoredDelivery { DeliveryId = 1, Message = Message("x", "old"), QoS = 1 });
        Store.SessionEnded("a");
        Store.SessionStarted("a", 120, null, null, 0);
        Store.SessionStarted("b", 60, null, null, 0);
        Store.SessionExpiryChanged("b", 999);

        var state = await DurableReopenAsync();
        Assert.Equal(["a", "b"], state.Sessions.Keys.Order(StringComparer.Ordinal));
        Assert.Empty(state.Sessions["a"].Subscriptions);
        Assert.Empty(state.Sessions["a"].Deliveries);
        Assert.Equal(120u, state.Sessions["a"].ExpiryInterval);
        Assert.True(state.Sessions["a"].Online);
        Assert.Equal(999u, state.Sessions["b"].ExpiryInterval);
    }

    [Fact]
    public async Task Positions_grow_and_become_durable()
    {
        var first = Store.SessionStarted("p", 10, null, null, 0);
        var second = Store.Subscribed("p", new StoredSubscription("t", 1, false, false, 0, 0, false));
        Assert.True(second > first);
        Assert.Equal(second, Store.Position);
        await Store.WaitDurableAsync(second).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(Store.IsDurable(second));
        Assert.True(Store.Healthy);
    }
}

public sealed class InMemoryBrokerStoreContractTests : BrokerStoreContractTests
{
    readonly InMemoryBrokerStore _store = new();

    protected override IBrokerStore Open() => _store;

    // the in-memory store survives "restarts" only within the process: reopening hands back the same instance
    protected override Task<StoredState> ReopenAsync() => Task.FromResult(Store.Load());
}

public sealed class EmbeddedBrokerStoreContractTests : BrokerStoreContractTests, IDisposable
{
    readonly string _directory = Directory.CreateTempSubdirectory("iotrt-store-").FullName;

    protected override IBrokerStore Open() =>
        EmbeddedBrokerStore.Open(new StoreOptions { Directory = _directory, Durability = DurabilityPolicy.Fsync }, NullLoggerFactory.Instance);

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
