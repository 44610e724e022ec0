using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Security;

namespace IotRealtime.Bridges.Fleet;

/// <summary>A client online now, as /api/fleet shows it.</summary>
public sealed record FleetClient(string ClientId, string? Username, DateTimeOffset ConnectedAt, string? Transport);

/// <summary>What a browser's publish came to: ok, or the reason it was refused.</summary>
public readonly record struct PublishOutcome(bool Ok, string? Reason)
{
    public static PublishOutcome Accepted { get; } = new(true, null);

    public static PublishOutcome Refused(string reason) => new(false, reason);
}

/// <summary>
/// What the bridges need from the broker besides the feed: publishing on a browser's behalf, who is online, presence
/// events, and whether the broker is draining. In-process it is the engine itself; in the standalone bridges host, an
/// MQTT client connection to a remote broker.
/// </summary>
public interface IBrokerLink
{
    /// <summary>The ACL that decides what a browser's identity may subscribe to and publish.</summary>
    IMqttAuthorizer Authorizer { get; }

    /// <summary>Whether the broker is draining: the bridges close their streams so clients reconnect elsewhere.</summary>
    bool IsDraining { get; }

    /// <summary>The drain window, when draining: reconnects are spread over it.</summary>
    TimeSpan DrainWindow { get; }

    IReadOnlyList<FleetClient> GetOnline();

    long MessagesReceived { get; }

    /// <summary>Presence events from now on; <paramref name="onEvent"/> must not block. Dispose to stop.</summary>
    IDisposable SubscribePresence(Action<PresenceEvent> onEvent);

    ValueTask<PublishOutcome> PublishAsync(ClientIdentity publisher, string topic, ReadOnlyMemory<byte> payload, int qos, bool retain, CancellationToken cancellationToken);
}
