using System.Threading.Channels;

namespace IotRealtime.Broker.Engine.Operations;

public enum PresenceEventKind
{
    Connected,
    Disconnected,
    WillPublished,
}

/// <summary>
/// A client came online, went offline, or had its will published. Fields that do not apply to a kind are null:
/// Connected has Username, Transport, RemoteEndPoint, ProtocolVersion; Disconnected has Reason and Clean; WillPublished has Topic.
/// </summary>
public sealed record PresenceEvent(PresenceEventKind Kind, string ClientId, DateTimeOffset At)
{
    public string? Username { get; init; }
    public string? Transport { get; init; }
    public string? RemoteEndPoint { get; init; }
    public string? ProtocolVersion { get; init; }

    /// <summary>Disconnected: ClientDisconnect, ClientDisconnectWithWill, ConnectionLost, or the server's reason (KeepAliveTimeout, SessionTakenOver, AdministrativeAction, …).</summary>
    public string? Reason { get; init; }

    /// <summary>Disconnected: whether the client ended with a normal DISCONNECT (no will).</summary>
    public bool? Clean { get; init; }

    /// <summary>Disconnected: another connection took the session over, so the client is still online.</summary>
    public bool? TakenOver { get; init; }

    /// <summary>WillPublished: the will's topic.</summary>
    public string? Topic { get; init; }
}

/// <summary>
/// One subscriber of the presence feed, with its own bounded buffer: when the reader falls behind, the oldest events
/// are dropped (counted in <see cref="Dropped"/>) so a slow dashboard can never hold broker memory. Dispose to leave.
/// </summary>
public sealed class PresenceSubscription : IDisposable
{
    readonly Channel<PresenceEvent> _channel;
    readonly Action<PresenceSubscription> _unsubscribe;
    long _dropped;

    internal PresenceSubscription(int capacity, Action<PresenceSubscription> unsubscribe)
    {
        _unsubscribe = unsubscribe;
        _channel = Channel.CreateBounded<PresenceEvent>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = false, SingleWriter = false },
            _ => Interlocked.Increment(ref _dropped));
    }

    public ChannelReader<PresenceEvent> Reader => _channel.Reader;

    public long Dropped => Interlocked.Read(ref _dropped);

    public IAsyncEnumerable<PresenceEvent> ReadAllAsync(CancellationToken cancellationToken = default) => _channel.Reader.ReadAllAsync(cancellationToken);

    internal void Write(PresenceEvent e) => _channel.Writer.TryWrite(e);

    public void Dispose()
    {
        _unsubscribe(this);
        _channel.Writer.TryComplete();
    }
}
