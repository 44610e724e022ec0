using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using MQTTnet.Formatter;

namespace IotRealtime.Broker.Engine;

/// <summary>
/// MQTTnet formatters hold encode buffers (over 1 KB each); connections borrow one per read or write pass instead of
/// owning one, so an idle connection costs no codec memory.
/// </summary>
internal sealed class PacketFormatterPool
{
    const int MaxPooledPerVersion = 64;
    readonly ConcurrentBag<IMqttPacketFormatter>[] _pools = [new(), new(), new()];
    readonly ConditionalWeakTable<IMqttPacketFormatter, MqttBufferWriter> _writers = new();

    public IMqttPacketFormatter Rent(MqttProtocolVersion version)
    {
        var pool = _pools[Index(version)];
        if (pool.TryTake(out var formatter))
        {
            return formatter;
        }
        var writer = new MqttBufferWriter(4096, 64 * 1024);
        formatter = MqttPacketFormatterAdapter.GetMqttPacketFormatter(version, writer);
        _writers.Add(formatter, writer);
        return formatter;
    }

    public void Return(MqttProtocolVersion version, IMqttPacketFormatter formatter)
    {
        var pool = _pools[Index(version)];
        if (pool.Count < MaxPooledPerVersion)
        {
            // a huge packet grew the buffer: shrink it back before it sits in the pool
            if (_writers.TryGetValue(formatter, out var writer))
            {
                writer.Cleanup();
            }
            pool.Add(formatter);
        }
    }

    static int Index(MqttProtocolVersion version) => version switch
    {
        MqttProtocolVersion.V500 => 0,
        MqttProtocolVersion.V311 => 1,
        MqttProtocolVersion.V310 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(version), version, "Unknown MQTT protocol version."),
    };
}
