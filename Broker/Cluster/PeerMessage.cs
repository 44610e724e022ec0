namespace IotRealtime.Broker.Cluster;

/// <summary>
/// One accepted message queued for a peer (it crosses encoded by <see cref="PeerMessageCodec"/>; the generated Orleans
/// codec is kept for the comparison in docs/cluster.md): what the peer needs to deliver it as the accepting node would (QoS,
/// retain flag, MQTT 5 properties, the publisher's client id for No Local). The expiry travels as the time left, so
/// the nodes' clocks need not agree. A retained message carries its <see cref="RetainedStamp"/> (<see cref="AcceptedAtMs"/>,
/// <see cref="Origin"/>): the node that accepted it may not be the sender when it comes in a retained sync.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record PeerMessage(
    [property: Id(0)] string Topic,
    [property: Id(1)] byte[] Payload,
    [property: Id(2)] byte QoS,
    [property: Id(3)] bool Retain,
    [property: Id(4)] string? PublisherClientId,
    [property: Id(5)] string? PublisherUsername,
    [property: Id(6)] long ExpiryMilliseconds,
    [property: Id(7)] PeerMessageProperties? Properties,
    [property: Id(8)] PeerRoute[]? SharedGroups,
    [property: Id(9)] long AcceptedAtMs = 0,
    [property: Id(10)] string? Origin = null)
{
    /// <summary>Topic and payload bytes, for the crossing counters.</summary>
    public int Size => Topic.Length + Payload.Length;
}

/// <summary>The MQTT 5 properties of a <see cref="PeerMessage"/>; null when it has none, as most telemetry has.</summary>
[GenerateSerializer, Immutable]
public sealed record PeerMessageProperties(
    [property: Id(0)] string? ContentType,
    [property: Id(1)] string? ResponseTopic,
    [property: Id(2)] byte[]? CorrelationData,
    [property: Id(3)] byte PayloadFormat,
    [property: Id(4)] string[]? UserPropertyNames,
    [property: Id(5)] byte[][]? UserPropertyValues);

/// <summary>A route as it crosses: the topic filter and, for a shared subscription, its group.</summary>
[GenerateSerializer, Immutable]
public readonly record struct PeerRoute([property: Id(0)] string TopicFilter, [property: Id(1)] string? ShareGroup);

/// <summary>
/// One grain call from one node to another: route changes (a full set when <see cref="RoutesReset"/>, replacing what
/// the receiver held for the sender) and then <see cref="MessageCount"/> messages in the sender's order, encoded in
/// <see cref="Messages"/> by <see cref="PeerMessageCodec"/>. Before those messages, a new link's first batches carry the
/// sender's retained set in <see cref="RetainedSync"/> (<see cref="RetainedSyncCount"/> messages): stored by the receiver,
/// not routed. The call's completion is the receiver's acknowledgement of all of it.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record PeerBatch(
    [property: Id(0)] string SenderNode,
    [property: Id(1)] string SenderSilo,
    [property: Id(2)] bool RoutesReset,
    [property: Id(3)] PeerRoute[] RoutesAdded,
    [property: Id(4)] PeerRoute[] RoutesRemoved,
    [property: Id(5)] byte[] Messages,
    [property: Id(6)] int MessageCount,
    [property: Id(7)] byte[]? RetainedSync = null,
    [property: Id(8)] int RetainedSyncCount = 0);
