using System.Reflection;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>Counters, bumped on the hot paths by connections; <see cref="Operations.SysPublisher"/> publishes them as $SYS topics.</summary>
public sealed partial class MqttBroker
{
    readonly long[] _publishReceived = new long[3];
    readonly long[] _publishSent = new long[3];
    long _bytesReceived;
    long _bytesSent;
    readonly long[] _dropped = new long[Enum.GetValues<DropReason>().Length];

    public long MessagesReceived => MessagesReceivedAt(MqttQualityOfServiceLevel.AtMostOnce) + MessagesReceivedAt(MqttQualityOfServiceLevel.AtLeastOnce) + MessagesReceivedAt(MqttQualityOfServiceLevel.ExactlyOnce);
    public long MessagesSent => MessagesSentAt(MqttQualityOfServiceLevel.AtMostOnce) + MessagesSentAt(MqttQualityOfServiceLevel.AtLeastOnce) + MessagesSentAt(MqttQualityOfServiceLevel.ExactlyOnce);
    public long MessagesReceivedAt(MqttQualityOfServiceLevel qos) => Interlocked.Read(ref _publishReceived[(int)qos]);
    public long MessagesSentAt(MqttQualityOfServiceLevel qos) => Interlocked.Read(ref _publishSent[(int)qos]);
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);
    public long BytesSent => Interlocked.Read(ref _bytesSent);
    public long Dropped(DropReason reason) => Interlocked.Read(ref _dropped[(int)reason]);

    internal void CountReceived(long bytes) => Interlocked.Add(ref _bytesReceived, bytes);
    internal void CountSent(long bytes) => Interlocked.Add(ref _bytesSent, bytes);
    internal void CountPublishReceived(MqttQualityOfServiceLevel qos) => Interlocked.Increment(ref _publishReceived[(int)qos]);
    internal void CountPublishSent(MqttQualityOfServiceLevel qos) => Interlocked.Increment(ref _publishSent[(int)qos]);
    internal void CountDropped(DropReason reason) => Interlocked.Increment(ref _dropped[(int)reason]);

    public static string Version { get; } =
        typeof(MqttBroker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
