using BenchmarkDotNet.Attributes;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Benchmarks;

/// <summary>
/// MqttBroker.Route of one QoS 1 message to N matching subscriptions, each of its own offline session (no store, no
/// sinks): trie match, per-subscriber Delivery, the session lock and the enqueue. Sessions are made with the
/// internal Session type and subscribed through MqttBroker.Subscribe, as a restore from the store does; no
/// connection exists, so no writer is signalled and nothing is encoded. Each invocation empties the queues again so
/// they stay below MaxQueuedMessages (that loop is part of the figure: a few ns per session).
/// </summary>
[MemoryDiagnoser]
public class RoutingBenchmarks
{
    MqttBroker _broker = null!;
    Session[] _sessions = null!;
    MqttMessage _message = null!;

    [Params(1, 10, 1000)]
    public int Subscribers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _broker = new MqttBroker(
            new BrokerOptions(), new AllowAllAuthenticator(), new AllowAllAuthorizer(), PublishPipeline.Empty,
            TimeProvider.System, NullLoggerFactory.Instance);
        _sessions = new Session[Subscribers];
        for (var i = 0; i < Subscribers; i++)
        {
            var session = new Session($"app-{i:D4}") { ExpiryInterval = uint.MaxValue };
            const string filter = "devices/+/telemetry";
            _broker.Subscribe(session, filter, null, filter, MqttQualityOfServiceLevel.AtLeastOnce, new MqttTopicFilter { Topic = filter }, 0, false);
            _sessions[i] = session;
        }
        // subscriptions that do not match, so the trie is not trivially small
        var other = new Session("other");
        for (var d = 0; d < 1000; d++)
        {
            var filter = $"devices/device-{d:D6}/commands/#";
            _broker.Subscribe(other, filter, null, filter, MqttQualityOfServiceLevel.AtLeastOnce, new MqttTopicFilter { Topic = filter }, 0, false);
        }
        _message = new MqttMessage
        {
            Topic = "devices/device-004217/telemetry",
            Payload = new byte[100],
            QoS = MqttQualityOfServiceLevel.AtLeastOnce,
            PublisherClientId = "device-004217",
            ReceivedAt = DateTimeOffset.UnixEpoch,
        };
    }

    [GlobalCleanup]
    public void Cleanup() => _broker.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark]
    public void Route()
    {
        _broker.Route(_message);
        foreach (var session in _sessions)
        {
            session.ClearPending();
        }
    }
}
