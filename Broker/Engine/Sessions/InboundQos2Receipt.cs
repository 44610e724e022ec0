namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>What an inbound QoS 2 PUBLISH's packet id means when it arrives (see <see cref="Session.ReceiveQos2"/>).</summary>
internal enum InboundQos2Receipt
{
    /// <summary>A new publish: it holds a fresh claim on the id.</summary>
    New,

    /// <summary>A resend of a publish already routed: acknowledged again, never routed again.</summary>
    Duplicate,

    /// <summary>A resend while the first publish is still in the accept stage: it waits for that one's outcome.</summary>
    Undecided,
}
