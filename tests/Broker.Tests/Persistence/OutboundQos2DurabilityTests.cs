using System.Collections.Concurrent;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Tests.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using static IotRealtime.Broker.Tests.Engine.Packets;

namespace IotRealtime.Broker.Tests.Persistence;

/// <summary>
/// An outbound QoS 2 PUBLISH leaves only once its packet id is in the store. Found by scripts/soak.sh: a broker killed
/// after sending a QoS 2 PUBLISH but before its packet id was on disk gave the message a new id after the restart (the
/// subscriber delivered it twice) and its id to another message.
/// </summary>
public sealed class OutboundQos2DurabilityTests
{
    /// <summary>A store whose records become durable only when the test says so; it notes who waits for what.</summary>
    sealed class GatedStore : ForwardingBrokerStore
    {
        readonly Lock _lock = new();
        long _durable = long.MaxValue;
        TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<(string ClientId, ushort PacketId, long Position)> InflightRecords { get; } = new();
        public ConcurrentQueue<long> Waits { get; } = new();

        public void Hold()
        {
            lock (_lock)
            {
                _durable = Inner.Position;
                _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        public void Release()
        {
            lock (_lock)
            {
                _durable = long.MaxValue;
                _released.TrySetResult();
            }
        }

        public override bool IsDurable(long position)
        {
            lock (_lock) return position <= _durable;
        }

        public override async ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken = default)
        {
            Task released;
            lock (_lock)
            {
                if (position <= _durable) return;
                released = _released.Task;
            }
            Waits.Enqueue(position);
            await released.WaitAsync(cancellationToken);
        }

        public override long InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state)
        {
            var position = Inner.InflightChanged(clientId, deliveryId, packetId, state);
            InflightRecords.Enqueue((clientId, packetId, position));
            return position;
        }
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task A_qos2_publish_waits_for_its_packet_id_to_be_durable_before_it_leaves(MqttProtocolVersion version)
    {
        var store = new GatedStore();
        await using var server = EngineServer.Start(store: store);
        var (sub, _) = await RawMqttClient.ConnectAsync(server.Port, "sub", version, cleanStart: false, configure: c => c.SessionExpiryInterval = 300);
        await sub.SendAsync(Subscribe(1, "q2/#", MqttQualityOfServiceLevel.ExactlyOnce));
        await sub.ReceiveAsync<MqttSubAckPacket>();

        store.Hold();
        server.Broker.Publish(new MqttMessage { Topic = "q2/t", Payload = "exactly once"u8.ToArray(), QoS = MqttQualityOfServiceLevel.ExactlyOnce });

        // the writer gave the delivery a packet id and recorded it, and now waits for that record to be durable
        await Wait.UntilAsync(() => store.InflightRecords.Any(r => r.ClientId == "sub"), TimeSpan.FromSeconds(10), "the delivery's packet id recorded");
        var record = store.InflightRecords.First(r => r.ClientId == "sub");
        await Wait.UntilAsync(() => store.Waits.Any(p => p >= record.Position), TimeSpan.FromSeconds(10), "the writer waiting for the packet id to be durable");

        store.Release();
        var publish = await sub.ReceiveAsync<MqttPublishPacket>();
        Assert.Equal(record.PacketId, publish.PacketIdentifier);
        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, publish.QualityOfServiceLevel);
        Assert.Equal("exactly once", publish.Text());
    }
}
