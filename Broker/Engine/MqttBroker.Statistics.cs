using System.Globalization;
using System.Reflection;
using System.Text;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

/// <summary>Counters and the $SYS/broker/... topics published from them.</summary>
public sealed partial class MqttBroker
{
    readonly long[] _publishReceived = new long[3];
    readonly long[] _publishSent = new long[3];
    long _bytesReceived;
    long _bytesSent;
    readonly long[] _dropped = new long[Enum.GetValues<DropReason>().Length];
    DateTimeOffset _nextSys;

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

    void PublishSysTopicsIfDue(DateTimeOffset now)
    {
        if (Options.SysInterval <= 0 || now < _nextSys)
        {
            return;
        }
        _nextSys = now.AddSeconds(Options.SysInterval);
        var uptime = (long)(now - StartedAt).TotalSeconds;
        PublishSys("$SYS/broker/version", "IotRealtime " + Version, now);
        PublishSys("$SYS/broker/uptime", uptime.ToString(CultureInfo.InvariantCulture) + " seconds", now);
        PublishSys("$SYS/broker/clients/connected", ConnectedClients, now);
        PublishSys("$SYS/broker/clients/total", SessionCount, now);
        PublishSys("$SYS/broker/messages/received", MessagesReceived, now);
        PublishSys("$SYS/broker/messages/sent", MessagesSent, now);
        PublishSys("$SYS/broker/bytes/received", BytesReceived, now);
        PublishSys("$SYS/broker/bytes/sent", BytesSent, now);
        PublishSys("$SYS/broker/subscriptions/count", SubscriptionCount, now);
        PublishSys("$SYS/broker/retained messages/count", Retained.Count, now);
    }

    void PublishSys(string topic, long value, DateTimeOffset now) => PublishSys(topic, value.ToString(CultureInfo.InvariantCulture), now);

    void PublishSys(string topic, string value, DateTimeOffset now) =>
        Route(new MqttMessage { Topic = topic, Payload = Encoding.UTF8.GetBytes(value), Retain = true, ReceivedAt = now });
}
