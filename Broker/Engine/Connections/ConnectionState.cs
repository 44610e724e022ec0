using System.IO.Pipelines;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>
/// The state one connection's parts share, declared in one place: whose it is, what CONNECT negotiated, and where the
/// connection is in its life. Each part keeps only its own working state next to its code (the writer its control lane
/// and encoder, the inbound pipeline its arrival-order queue, rate limit and topic aliases, the ack queue its
/// acknowledgements, the reader its read batch).
/// </summary>
internal sealed class ConnectionState
{
    volatile bool _closeRequested;
    long _lastActivity;

    public ConnectionState(MqttBroker broker, MqttConnection connection, IDuplexPipe transport, ConnectionInfo info)
    {
        Broker = broker;
        Connection = connection;
        Transport = transport;
        Info = info;
        OpenedAt = _lastActivity = broker.Time.GetTimestamp();
    }

    public MqttBroker Broker { get; }
    public MqttConnection Connection { get; }
    public IDuplexPipe Transport { get; }
    public ConnectionInfo Info { get; }

    // ---------------------------------------------------------------- negotiated by CONNECT (ConnectHandler)

    public MqttProtocolVersion Version { get; set; }
    public bool IsV5 => Version == MqttProtocolVersion.V500;
    /// <summary>Set once CONNECT is accepted; the session stays this connection's until it closes or is taken over.</summary>
    public Session? Session { get; set; }
    public Will? Will { get; set; }
    /// <summary>Seconds; the client's own, or the Server Keep Alive an MQTT 5 client was told.</summary>
    public ushort KeepAlive { get; set; }
    /// <summary>How many QoS 1/2 deliveries may await the client's acknowledgement (MQTT 5 Receive Maximum).</summary>
    public int ClientReceiveMaximum { get; set; }
    /// <summary>The largest packet the client accepts; 0: no limit.</summary>
    public uint ClientMaximumPacketSize { get; set; }
    public ushort ClientTopicAliasMaximum { get; set; }
    /// <summary>The session expiry CONNECT asked for: a DISCONNECT cannot turn 0 into a persistent session.</summary>
    public uint ConnectSessionExpiry { get; set; }

    // ---------------------------------------------------------------- life

    /// <summary>Set when CONNECT is accepted; before, only CONNECT is read.</summary>
    public bool Connected { get; set; }
    public DateTimeOffset? ConnectedAt { get; set; }
    /// <summary>Holds one of the broker's <see cref="BrokerOptions.MaxConnections"/> slots.</summary>
    public bool Admitted { get; set; }
    /// <summary>Timestamp of the connection's start: the connect timeout counts from it.</summary>
    public long OpenedAt { get; }

    /// <summary>Timestamp of the last read: the keep-alive counts from it (housekeeping reads it from another thread).</summary>
    public long LastActivity
    {
        get => Volatile.Read(ref _lastActivity);
        set => Volatile.Write(ref _lastActivity, value);
    }

    /// <summary>Once set, the reader stops, the writer makes a last pass (a final DISCONNECT) and the connection ends.</summary>
    public bool CloseRequested
    {
        get => _closeRequested;
        set => _closeRequested = value;
    }

    /// <summary>The first reason the server gave for closing, if any.</summary>
    public MqttDisconnectReasonCode? CloseReason { get; set; }
    public bool ClientSentDisconnect { get; set; }
    /// <summary>The client disconnected without asking for its will.</summary>
    public bool CleanDisconnect { get; set; }
    /// <summary>After our DISCONNECT, read and discard the client's input for a moment before closing.</summary>
    public bool LingerForDisconnect { get; set; }
}
