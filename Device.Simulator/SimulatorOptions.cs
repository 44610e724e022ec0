using System.Globalization;
using System.Net;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator;

/// <summary>
/// Everything a run is told on the command line: <c>iotrealtime-sim SCENARIO [--option value ...]</c>.
/// Defaults live on the properties; <see cref="Validate"/> names the option in every error.
/// </summary>
public sealed class SimulatorOptions
{
    public static readonly string[] Scenarios = ["idle", "connect", "fanin", "fanout", "p2p", "shared", "latency", "soak"];

    public const string Usage = """
        usage: iotrealtime-sim idle [options]

        Opens MQTT 3.1.1 connections at a bounded rate, holds them idle, reports, disconnects and exits.

          --host ADDRESS             broker address (default 127.0.0.1)
          --port N                   broker MQTT port (default 1883)
          --subscriber-port N        fanin, fanout, p2p, shared, latency: the subscribers connect to this port of
                                     --host instead (another node of a cluster); publishers stay on --port
          --connections N            connections to open (default 1000)
          --rate N                   new connections per second, at most (default 1000)
          --hold SECONDS             how long to hold them once the ramp ends (default 10)
          --keepalive SECONDS        MQTT keep-alive sent in CONNECT; 0 = none (default 60)
          --client-id-pattern TEXT   client id, {0} = connection index (default "sim-{0}")
          --connect-timeout SECONDS  TCP connect + CONNACK deadline per connection (default 10)
          --max-pending N            connects in flight at once, at most (default 1000)
          --source-base ADDRESS      first local source address; connection i binds to base + i / per-source,
                                     spreading ephemeral ports over 127.0.0.2, 127.0.0.3, ... (default 127.0.0.2);
                                     "none" lets the OS pick
          --per-source N             connections per source address (default 10000)
          --json PATH                also write the report as JSON to PATH
          -h, --help                 this text

        usage: iotrealtime-sim fanin [options]

        P publishers send to bench/<id>, one subscriber on bench/# receives everything; closed loop: at most
        --inflight messages are published but not yet received. Reports throughput at the subscriber,
        publish-to-ack and end-to-end latency, lost and duplicated messages.

          --host, --port, --keepalive, --connect-timeout, --json   as above
          --publishers N             publisher connections (default 50)
          --qos 0|1|2                QoS of the publishes and of the subscription (default 1)
          --payload BYTES            payload size, at least 20 (default 100)
          --messages N               messages to publish in total, at most (default 200000)
          --inflight N               published but not yet received, at most (default 1000)
          --ahead N                  instead of --inflight: each publisher at most N messages past the newest of its
                                     own the subscriber has had; a message passed over by a later one counts as
                                     settled, so QoS 0 loss shows as loss, not as a slower loop (default 0 = off)
          --duration SECONDS         stop publishing after this long, at most (default 30)
          --subscriber-session clean|persistent
                                     clean session, or clean session 0 so a durable broker stores each
                                     message for the subscriber before acknowledging it (default clean)
          --stall-timeout SECONDS    end the run when nothing arrives for this long (default 10)

        usage: iotrealtime-sim connect [options]

        The idle scenario as a connect storm: same options (use --hold 0); its report has connect p50/p99/max.

        usage: iotrealtime-sim fanout|p2p|shared|latency [options]

        fanout:  1 publisher on bench/0 -> --subscribers subscribers on bench/0; deliveries = messages x subscribers;
                 closed loop: at most --inflight messages not yet received by every subscriber.
        p2p:     --publishers pairs; publisher i -> bench/i -> its own subscriber; closed loop.
        shared:  --publishers publishers -> $share/g/bench/# with --subscribers consumers; each message goes to one.
        latency: open loop at --rate msg/s in total from --publishers publishers -> one subscriber on bench/#;
                 end-to-end percentiles in microseconds.
        Loss and duplicates are counted per subscriber (across the group for shared).

          --host, --port, --keepalive, --connect-timeout, --json, --publishers, --qos, --payload, --messages,
          --inflight, --duration, --stall-timeout   as for fanin
          --subscribers N            subscribers (fanout) or group members (shared) (default 100)
          --rate N                   latency: messages per second in total (default 1000)

        usage: iotrealtime-sim soak [options]

        For scripts/soak.sh, which kills and restarts the broker meanwhile. --publishers persistent-session publishers
        (even ids QoS 1, odd ids QoS 2) to soak/<id> at --rate msg/s in all, one persistent subscriber on soak/# at
        QoS 2; every client reconnects after any loss of its connection and sends again what the spec says it must
        (unacknowledged PUBLISH with DUP, PUBREL). Reports acknowledged messages (PUBACK/PUBCOMP) the subscriber never
        received, QoS 2 duplicates, sessions the broker forgot, and exits 1 unless all are zero.

          --host, --port, --connect-timeout, --json, --publishers, --payload, --duration   as above
          --rate N                   messages per second in all (default 1000)
          --inflight N               unacknowledged messages per publisher, at most
          --churn-rate N             short-lived connections per second beside the load (default 0)
          --client-kill-every SECONDS   reset one client's connection (no DISCONNECT) this often; every fifth is
                                     the subscriber (default 0 = never)
        """;

    public string Scenario { get; set; } = "idle";
    public bool ShowHelp { get; set; }
    public string Host { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 1883;
    /// <summary>0: the subscribers connect to <see cref="Port"/> like the publishers.</summary>
    public int SubscriberPort { get; set; }
    public int Connections { get; set; } = 1000;
    public int Rate { get; set; } = 1000;
    public int HoldSeconds { get; set; } = 10;
    public int KeepAliveSeconds { get; set; } = 60;
    public string ClientIdPattern { get; set; } = "sim-{0}";
    public int ConnectTimeoutSeconds { get; set; } = 10;

    /// <summary>Bounds the connect backlog so a slow broker sees at most this many half-open handshakes.</summary>
    public int MaxPending { get; set; } = 1000;

    /// <summary>null = no explicit bind. Each source address has its own ~28k ephemeral ports on Linux.</summary>
    public IPAddress? SourceBase { get; set; } = IPAddress.Parse("127.0.0.2");

    /// <summary>10,000 stays well inside one address's ephemeral range even with TIME_WAIT leftovers from a previous run.</summary>
    public int PerSource { get; set; } = 10_000;

    public string? JsonPath { get; set; }

    public int Publishers { get; set; } = 50;
    public int Qos { get; set; } = 1;
    public int PayloadBytes { get; set; } = 100;
    public int Messages { get; set; } = 200_000;

    /// <summary>
    /// Bounds published-but-not-received messages so that no broker queue limit is ever reached and a drop means a bug,
    /// not overload. Below 65,536 so that one publisher never runs out of packet ids.
    /// </summary>
    public int Inflight { get; set; } = 1000;

    /// <summary>0 = the shared closed loop of <see cref="Inflight"/>; otherwise a window per publisher (fanin only).</summary>
    public int Ahead { get; set; }

    /// <summary>soak: short-lived connections per second beside the load; 0 = none.</summary>
    public int ChurnRate { get; set; }

    /// <summary>soak: seconds between client connection resets; 0 = none.</summary>
    public int ClientKillEverySeconds { get; set; }

    public int DurationSeconds { get; set; } = 30;
    public bool PersistentSubscriber { get; set; }
    public int StallTimeoutSeconds { get; set; } = 10;
    public int Subscribers { get; set; } = 100;

    public IPEndPoint BrokerEndPoint => new(IPAddress.Parse(Host), Port);

    /// <summary>Where the subscribers of fanin and the bench scenarios connect: another node of a cluster, or the broker.</summary>
    public IPEndPoint SubscriberEndPoint => new(IPAddress.Parse(Host), SubscriberPort == 0 ? Port : SubscriberPort);

    public static bool TryParse(string[] args, out SimulatorOptions options, out string error)
    {
        options = new SimulatorOptions();
        error = "";
        if (args.Length == 0)
        {
            error = "no scenario given";
            return false;
        }

        var i = 0;
        if (args[0] is "-h" or "--help")
        {
            options.ShowHelp = true;
            return true;
        }

        if (!args[0].StartsWith('-'))
        {
            options.Scenario = args[0];
            i = 1;
        }

        for (; i < args.Length; i++)
        {
            var name = args[i];
            if (name is "-h" or "--help")
            {
                options.ShowHelp = true;
                return true;
            }

            if (i + 1 >= args.Length)
            {
                error = $"{name} needs a value";
                return false;
            }

            var value = args[++i];
            if (!options.TrySet(name, value, out error)) return false;
        }

        var problems = options.Validate().ToList();
        error = string.Join(Environment.NewLine, problems);
        return problems.Count == 0;
    }

    bool TrySet(string name, string value, out string error)
    {
        error = "";
        switch (name)
        {
            case "--host": Host = value; return true;
            case "--port": return OptionParsing.TryInt(name, value, v => Port = v, out error);
            case "--subscriber-port": return OptionParsing.TryInt(name, value, v => SubscriberPort = v, out error);
            case "--connections": return OptionParsing.TryInt(name, value, v => Connections = v, out error);
            case "--rate": return OptionParsing.TryInt(name, value, v => Rate = v, out error);
            case "--hold": return OptionParsing.TryInt(name, value, v => HoldSeconds = v, out error);
            case "--keepalive": return OptionParsing.TryInt(name, value, v => KeepAliveSeconds = v, out error);
            case "--client-id-pattern": ClientIdPattern = value; return true;
            case "--connect-timeout": return OptionParsing.TryInt(name, value, v => ConnectTimeoutSeconds = v, out error);
            case "--max-pending": return OptionParsing.TryInt(name, value, v => MaxPending = v, out error);
            case "--per-source": return OptionParsing.TryInt(name, value, v => PerSource = v, out error);
            case "--json": JsonPath = value; return true;
            case "--publishers": return OptionParsing.TryInt(name, value, v => Publishers = v, out error);
            case "--qos": return OptionParsing.TryInt(name, value, v => Qos = v, out error);
            case "--payload": return OptionParsing.TryInt(name, value, v => PayloadBytes = v, out error);
            case "--messages": return OptionParsing.TryInt(name, value, v => Messages = v, out error);
            case "--inflight": return OptionParsing.TryInt(name, value, v => Inflight = v, out error);
            case "--ahead": return OptionParsing.TryInt(name, value, v => Ahead = v, out error);
            case "--churn-rate": return OptionParsing.TryInt(name, value, v => ChurnRate = v, out error);
            case "--client-kill-every": return OptionParsing.TryInt(name, value, v => ClientKillEverySeconds = v, out error);
            case "--duration": return OptionParsing.TryInt(name, value, v => DurationSeconds = v, out error);
            case "--stall-timeout": return OptionParsing.TryInt(name, value, v => StallTimeoutSeconds = v, out error);
            case "--subscribers": return OptionParsing.TryInt(name, value, v => Subscribers = v, out error);
            case "--subscriber-session":
                if (value is "clean" or "persistent")
                {
                    PersistentSubscriber = value == "persistent";
                    return true;
                }

                error = $"--subscriber-session must be 'clean' or 'persistent' (was '{value}')";
                return false;
            case "--source-base": return OptionParsing.TrySourceBase(value, v => SourceBase = v, out error);
            default:
                error = $"unknown option '{name}'";
                return false;
        }
    }

    public IEnumerable<string> Validate()
    {
        if (!Scenarios.Contains(Scenario)) yield return $"unknown scenario '{Scenario}'; known: {string.Join(", ", Scenarios)}";
        if (!IPAddress.TryParse(Host, out _)) yield return $"--host must be an IP address (was '{Host}')";
        if (Port is < 1 or > 65535) yield return $"--port must be between 1 and 65535 (was {Port})";
        if (SubscriberPort is < 0 or > 65535) yield return $"--subscriber-port must be between 1 and 65535 (was {SubscriberPort})";
        if (SubscriberPort != 0 && Scenario is not ("fanin" or "fanout" or "p2p" or "shared" or "latency"))
            yield return $"--subscriber-port applies to fanin, fanout, p2p, shared and latency only (was given to {Scenario})";
        // One process holds at most its open-file limit of sockets; larger fleets are sharded across processes.
        if (Connections is < 1 or > 1_000_000) yield return $"--connections must be between 1 and 1000000 (was {Connections})";
        if (Rate < 1) yield return $"--rate must be at least 1 connection per second (was {Rate})";
        if (HoldSeconds is < 0 or > 86_400) yield return $"--hold must be between 0 and 86400 seconds (was {HoldSeconds})";
        if (KeepAliveSeconds is < 0 or > ushort.MaxValue) yield return $"--keepalive must be between 0 and 65535 seconds (was {KeepAliveSeconds})";
        if (ConnectTimeoutSeconds < 1) yield return $"--connect-timeout must be at least 1 second (was {ConnectTimeoutSeconds})";
        if (MaxPending < 1) yield return $"--max-pending must be at least 1 (was {MaxPending})";
        // Each publisher is one socket; the open-file limit of one process is the real ceiling.
        if (Publishers is < 1 or > 10_000) yield return $"--publishers must be between 1 and 10000 (was {Publishers})";
        if (Qos is < 0 or > 2) yield return $"--qos must be 0, 1 or 2 (was {Qos})";
        if (PayloadBytes is < FanInPayload.HeaderLength or > 1_048_576)
            yield return $"--payload must be between {FanInPayload.HeaderLength} (publisher id, sequence, timestamp) and 1048576 bytes (was {PayloadBytes})";
        if (Messages < 1) yield return $"--messages must be at least 1 (was {Messages})";
        if (Inflight is < 1 or > 65_000) yield return $"--inflight must be between 1 and 65000 (was {Inflight})";
        // Below 65,536 for the same reason as --inflight: a publisher never runs out of packet ids.
        if (Ahead is < 0 or > 65_000) yield return $"--ahead must be between 0 (off) and 65000 (was {Ahead})";
        if (Ahead > 0 && Scenario != "fanin") yield return $"--ahead applies to the fanin scenario only (was given to {Scenario})";
        if (ChurnRate is < 0 or > 20_000) yield return $"--churn-rate must be between 0 (none) and 20000 connections per second (was {ChurnRate})";
        if (ClientKillEverySeconds is < 0 or > 86_400) yield return $"--client-kill-every must be between 0 (never) and 86400 seconds (was {ClientKillEverySeconds})";
        if ((ChurnRate > 0 || ClientKillEverySeconds > 0) && Scenario != "soak") yield return $"--churn-rate and --client-kill-every apply to the soak scenario only (was given to {Scenario})";
        if (Scenario == "soak" && Rate > 100_000) yield return $"--rate for soak must be at most 100000 messages per second (was {Rate})";
        if (DurationSeconds is < 1 or > 86_400) yield return $"--duration must be between 1 and 86400 seconds (was {DurationSeconds})";
        if (Subscribers is < 1 or > 10_000) yield return $"--subscribers must be between 1 and 10000 (was {Subscribers})";
        if (StallTimeoutSeconds < 1) yield return $"--stall-timeout must be at least 1 second (was {StallTimeoutSeconds})";
        if (PerSource is < 1 or > 28_000) yield return $"--per-source must be between 1 and 28000, one address's ephemeral port range (was {PerSource})";

        string? idProblem = null;
        try
        {
            var first = string.Format(CultureInfo.InvariantCulture, ClientIdPattern, 0);
            var last = string.Format(CultureInfo.InvariantCulture, ClientIdPattern, Math.Max(Connections - 1, 0));
            if (!ClientIdPattern.Contains("{0", StringComparison.Ordinal)) idProblem = "must contain {0} so that client ids differ";
            else if (System.Text.Encoding.UTF8.GetByteCount(last) > ushort.MaxValue || first.Length == 0) idProblem = "gives an empty or over-long client id";
        }
        catch (FormatException)
        {
            idProblem = "is not a valid format string (use {0} for the index, {{ and }} for braces)";
        }

        if (idProblem is not null) yield return $"--client-id-pattern {idProblem} (was '{ClientIdPattern}')";

        if (SourceBase is not null && Connections > 1)
        {
            var addresses = (Connections - 1) / PerSource;
            var lastOctet = SourceBase.GetAddressBytes()[3] + addresses;
            if (lastOctet > 254) yield return $"--source-base {SourceBase} with --per-source {PerSource} runs past x.x.x.254 for {Connections} connections; lower the base or raise --per-source";
        }
    }
}
