using System.Globalization;
using System.Net;
using IotRealtime.Device.Simulator.Connections;
using IotRealtime.Hosting.Limits;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// The options of <c>iotrealtime-sim run</c> (alias <c>fleet</c>): a fleet of devices that connect at a paced rate,
/// publish telemetry, listen for commands and reconnect with backoff. Defaults live on the properties.
/// </summary>
public sealed class FleetOptions
{
    /// <summary>Open files assumed where the limit cannot be read (not Linux) or is unlimited: the 20,000 this project was sized on.</summary>
    public const long FallbackOpenFiles = 20_000;

    /// <summary>Connections one process may hold: its open-file limit (RLIMIT_NOFILE) less a reserve for the runtime, verifier and pipes.</summary>
    public static int MaxConnectionsPerProcess { get; } = (int)Math.Min(int.MaxValue, OpenFileLimit.ConnectionCap(OpenFileLimit.Read() ?? FallbackOpenFiles));

    /// <summary>Ephemeral ports one source address has towards one destination address and port (Linux default range).</summary>
    public const int PortsPerSourceAndDestination = 28_000;

    public const string PasswordVariable = "IOTREALTIME_SIM_PASSWORD";

    public const string Usage = """
        usage: iotrealtime-sim run|fleet [options]

        A fleet of devices: each connects (paced by a token bucket shared by connects and reconnects), subscribes to its
        command topic, publishes JSON telemetry to its own topic at --interval ± --jitter, and reconnects with
        exponential backoff and jitter. Stops after --duration seconds (or --messages-per-device), disconnects, reports.

          --host ADDRESS              broker address (default 127.0.0.1)
          --port N                    broker MQTT port (default 1883; 8883 is usual with --tls)
          --hosts A:P,B:P,...         several broker addresses (IPv4): device i connects to entry i mod count, no balancer
          --mode auto|raw|mqttnet     raw: the simulator's own MQTT 3.1.1 sockets, one epoll thread, under 2 KB per idle
                                      device (Linux, TCP, MQTT 3.1.1, QoS 0/1); mqttnet: an MQTTnet client per device (TLS,
                                      WebSocket, MQTT 5, QoS 2, redirects); auto (default): raw wherever it covers the run
          --ws URL                    MQTT over WebSocket instead of TCP: ws://127.0.0.1:8080/mqtt or wss://...
          --tls                       TLS over TCP (wss:// URLs imply it)
          --ca-file PEM               trust only this CA for the broker certificate (default: system trust)
          --cert-file PEM --key-file PEM   client certificate and key
          --tls-server-name NAME      name to expect in the broker certificate (default --host)
          --username TEXT --password TEXT  credentials; the password may come from $IOTREALTIME_SIM_PASSWORD instead
          --protocol 3.1.1|5          MQTT version (default 3.1.1)
          --devices N                 devices in the whole fleet, across shards and processes (default 100)
          --client-id-pattern TEXT    client id, {0} = device index (default "dev-{0:D6}")
          --connect-rate N            connection attempts per second per process, at most (default 500)
          --ramp SECONDS              spread the first connects over this long (lowers the rate to devices/ramp)
          --interval SECONDS          time between one device's publishes (default 1)
          --jitter SECONDS            each wait is interval ± up to this (default 0.1)
          --qos 0|1|2                 QoS of telemetry, command subscription and verifier (default 1)
          --payload-size BYTES        pad the JSON payload to at least this (default 0 = no padding)
          --payload-template TEXT     payload text with {dev} {id} {seq} {ts} {temp} {hum} instead of the default JSON
          --topic-pattern TEXT        telemetry topic, {0} = client id (default "devices/{0}/telemetry")
          --command-topic-pattern TEXT   subscribed per device, "none" to skip (default "devices/{0}/commands/#")
          --will-topic-pattern TEXT   last will topic, {0} = client id (default: no will)
          --keepalive SECONDS         MQTT keep-alive (default 60)
          --session clean|persistent  clean session/start, or keep it (default clean)
          --session-expiry SECONDS    MQTT 5 session expiry for persistent sessions (default 3600)
          --reconnect-min SECONDS --reconnect-max SECONDS   backoff bounds (default 1 and 30)
          --connect-timeout SECONDS   per attempt (default 10)
          --duration SECONDS          length of the run (default 60)
          --messages-per-device N     stop a device after N messages (default 0 = until --duration)
          --verify                    one more client subscribes to the telemetry topics and counts lost/duplicated messages
          --churn-rate N              beside the devices, N short-lived connections per second in all (MQTT 3.1.1 over
                                      TCP: CONNECT, CONNACK, DISCONNECT, close), from 127.1.0.1-64 (default 0 = none)
          --processes K               run as K child processes of this one, each with its share of devices (default 1)
          --shard I/N                 this host runs shard I of N of the fleet (default 0/1)
          --source-base ADDRESS       first local source address (default 127.0.0.2; "none" lets the OS pick; TCP only)
          --per-source N              connections per source address (default 10000)
          --json PATH                 also write the report as JSON
          --no-progress               no live progress line
        """;

    public string Host { get; set; } = "127.0.0.1";
    public int Port { get; set; } = 1883;

    /// <summary>From --hosts; empty means the one broker at --host:--port.</summary>
    public List<(string Host, int Port)> Hosts { get; } = [];

    public FleetDeviceMode Mode { get; set; } = FleetDeviceMode.Auto;
    public string? WebSocketUrl { get; set; }
    public bool Tls { get; set; }
    public string? CaFile { get; set; }
    public string? CertFile { get; set; }
    public string? KeyFile { get; set; }
    public string? TlsServerName { get; set; }
    public string? Username { get; set; }
    public string? Password { get; set; }
    public bool Mqtt5 { get; set; }
    public int Devices { get; set; } = 100;
    public string ClientIdPattern { get; set; } = "dev-{0:D6}";
    public double ConnectRate { get; set; } = 500;
    public double RampSeconds { get; set; }
    public double IntervalSeconds { get; set; } = 1;
    public double JitterSeconds { get; set; } = 0.1;
    public int Qos { get; set; } = 1;
    public int PayloadSize { get; set; }
    public string? PayloadTemplate { get; set; }
    public string TopicPattern { get; set; } = "devices/{0}/telemetry";
    public string? CommandTopicPattern { get; set; } = "devices/{0}/commands/#";
    public string? WillTopicPattern { get; set; }
    public int KeepAliveSeconds { get; set; } = 60;
    public bool PersistentSession { get; set; }
    public uint SessionExpirySeconds { get; set; } = 3600;
    public double ReconnectMinSeconds { get; set; } = 1;
    public double ReconnectMaxSeconds { get; set; } = 30;
    public double ConnectTimeoutSeconds { get; set; } = 10;
    public double DurationSeconds { get; set; } = 60;
    public long MessagesPerDevice { get; set; }
    public bool Verify { get; set; }

    /// <summary>Short-lived connections per second beside the fleet, over all processes; 0 = none.</summary>
    public double ChurnRate { get; set; }
    public int Processes { get; set; } = 1;
    public ShardPlan Shard { get; set; } = ShardPlan.Whole;
    public IPAddress? SourceBase { get; set; } = IPAddress.Parse("127.0.0.2");
    public int PerSource { get; set; } = 10_000;
    public string? JsonPath { get; set; }
    public bool Progress { get; set; } = true;

    /// <summary>Set by a parent for its children: progress as machine-readable lines on stdout.</summary>
    public bool ChildMode { get; set; }

    public bool ShowHelp { get; set; }

    public bool UsesTls => Tls || (WebSocketUrl?.StartsWith("wss://", StringComparison.OrdinalIgnoreCase) ?? false);

    /// <summary>The broker addresses devices spread over: the --hosts list, or --host:--port.</summary>
    public IReadOnlyList<(string Host, int Port)> Brokers => Hosts.Count > 0 ? Hosts : [(Host, Port)];

    /// <summary>Where device <paramref name="device"/> (global index) connects when --hosts is given; null for the one --host.</summary>
    public IPEndPoint? TargetFor(int device) =>
        Hosts.Count == 0 ? null : new IPEndPoint(IPAddress.Parse(Hosts[device % Hosts.Count].Host), Hosts[device % Hosts.Count].Port);

    /// <summary>Why the raw device mode cannot run these options, or null when it can.</summary>
    public string? RawModeGap =>
        !OperatingSystem.IsLinux() ? "it needs Linux (epoll)"
        : WebSocketUrl is not null ? "it speaks MQTT over TCP only, not WebSocket"
        : UsesTls ? "it has no TLS"
        : Mqtt5 ? "it speaks MQTT 3.1.1 only"
        : Qos > 1 ? "it publishes at QoS 0 or 1 only"
        : Brokers.Any(b => !IPAddress.TryParse(b.Host, out var a) || a.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) ? "it connects to IPv4 addresses only (no names)"
        : null;

    /// <summary>Raw mode when asked for, or (auto) wherever it covers the run.</summary>
    public bool UsesRawMode => Mode == FleetDeviceMode.Raw || (Mode == FleetDeviceMode.Auto && RawModeGap is null);

    /// <summary>
    /// Connections one source address carries: IP_BIND_ADDRESS_NO_PORT (raw mode) lets the kernel reuse ports across
    /// destinations, so each broker address adds another ~28k; MQTTnet binds a port per connection, ~28k in all.
    /// </summary>
    public int MaxPerSource => UsesRawMode ? PortsPerSourceAndDestination * Brokers.Count : PortsPerSourceAndDestination;

    /// <summary>The devices this process (or, with --processes, each of its children) simulates.</summary>
    public (int First, int Count) LocalDevices => Shard.Devices(Devices);

    public string ClientId(int device) => string.Format(CultureInfo.InvariantCulture, ClientIdPattern, device);

    /// <summary>The filter that matches every device's telemetry topic: the client id replaced by '+'.</summary>
    public string VerifyFilter => TopicPattern.Replace("{0}", "+", StringComparison.Ordinal);

    public static bool TryParse(IReadOnlyList<string> args, out FleetOptions options, out string error)
    {
        options = new FleetOptions();
        error = "";
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            switch (name)
            {
                case "-h" or "--help": options.ShowHelp = true; return true;
                case "--tls": options.Tls = true; continue;
                case "--verify": options.Verify = true; continue;
                case "--no-progress": options.Progress = false; continue;
                case "--child": options.ChildMode = true; options.Progress = false; continue;
            }

            if (i + 1 >= args.Count)
            {
                error = $"{name} needs a value";
                return false;
            }

            if (!options.TrySet(name, args[++i], out error)) return false;
        }

        options.Password ??= Environment.GetEnvironmentVariable(PasswordVariable);
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
            case "--hosts": return TryHosts(value, out error);
            case "--mode":
                if (Enum.TryParse<FleetDeviceMode>(value, ignoreCase: true, out var mode) && value.All(char.IsLetter))
                {
                    Mode = mode;
                    return true;
                }

                error = $"--mode must be auto, raw or mqttnet (was '{value}')";
                return false;
            case "--ws": WebSocketUrl = value; return true;
            case "--ca-file": CaFile = value; return true;
            case "--cert-file": CertFile = value; return true;
            case "--key-file": KeyFile = value; return true;
            case "--tls-server-name": TlsServerName = value; return true;
            case "--username": Username = value; return true;
            case "--password": Password = value; return true;
            case "--protocol":
                if (value is "3.1.1" or "4" or "5" or "5.0")
                {
                    Mqtt5 = value is "5" or "5.0";
                    return true;
                }

                error = $"--protocol must be 3.1.1 or 5 (was '{value}')";
                return false;
            case "--devices": return OptionParsing.TryInt(name, value, v => Devices = v, out error);
            case "--client-id-pattern": ClientIdPattern = value; return true;
            case "--connect-rate": return OptionParsing.TryNumber(name, value, v => ConnectRate = v, out error);
            case "--ramp": return OptionParsing.TryNumber(name, value, v => RampSeconds = v, out error);
            case "--interval": return OptionParsing.TryNumber(name, value, v => IntervalSeconds = v, out error);
            case "--jitter": return OptionParsing.TryNumber(name, value, v => JitterSeconds = v, out error);
            case "--qos": return OptionParsing.TryInt(name, value, v => Qos = v, out error);
            case "--payload-size": return OptionParsing.TryInt(name, value, v => PayloadSize = v, out error);
            case "--payload-template": PayloadTemplate = value; return true;
            case "--topic-pattern": TopicPattern = value; return true;
            case "--command-topic-pattern": CommandTopicPattern = value == "none" ? null : value; return true;
            case "--will-topic-pattern": WillTopicPattern = value; return true;
            case "--keepalive": return OptionParsing.TryInt(name, value, v => KeepAliveSeconds = v, out error);
            case "--session":
                if (value is "clean" or "persistent")
                {
                    PersistentSession = value == "persistent";
                    return true;
                }

                error = $"--session must be 'clean' or 'persistent' (was '{value}')";
                return false;
            case "--session-expiry": return OptionParsing.TryInt(name, value, v => SessionExpirySeconds = (uint)Math.Max(0, v), out error);
            case "--reconnect-min": return OptionParsing.TryNumber(name, value, v => ReconnectMinSeconds = v, out error);
            case "--reconnect-max": return OptionParsing.TryNumber(name, value, v => ReconnectMaxSeconds = v, out error);
            case "--connect-timeout": return OptionParsing.TryNumber(name, value, v => ConnectTimeoutSeconds = v, out error);
            case "--duration": return OptionParsing.TryNumber(name, value, v => DurationSeconds = v, out error);
            case "--churn-rate": return OptionParsing.TryNumber(name, value, v => ChurnRate = v, out error);
            case "--messages-per-device": return OptionParsing.TryInt(name, value, v => MessagesPerDevice = v, out error);
            case "--processes": return OptionParsing.TryInt(name, value, v => Processes = v, out error);
            case "--shard":
                if (ShardPlan.TryParse(value, out var shard))
                {
                    Shard = shard;
                    return true;
                }

                error = $"--shard must be I/N with 0 <= I < N, e.g. 3/10 (was '{value}')";
                return false;
            case "--per-source": return OptionParsing.TryInt(name, value, v => PerSource = v, out error);
            case "--source-base": return OptionParsing.TrySourceBase(value, v => SourceBase = v, out error);
            case "--json": JsonPath = value; return true;
            default:
                error = $"unknown option '{name}'";
                return false;
        }
    }

    bool TryHosts(string value, out string error)
    {
        error = "";
        Hosts.Clear();
        foreach (var entry in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = entry.LastIndexOf(':');
            if (colon <= 0 || !IPAddress.TryParse(entry[..colon], out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
                || !int.TryParse(entry[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                error = $"--hosts takes IPv4 address:port entries separated by commas, e.g. 127.0.0.1:1883,127.0.0.1:1884 (was '{entry}')";
                return false;
            }

            Hosts.Add((entry[..colon], port));
        }

        if (Hosts.Count > 0) return true;
        error = "--hosts needs at least one address:port";
        return false;
    }

    public IEnumerable<string> Validate()
    {
        if (Mode == FleetDeviceMode.Raw && RawModeGap is { } gap) yield return $"--mode raw cannot run these options: {gap} (use --mode mqttnet)";
        if (Hosts.Count > 0 && WebSocketUrl is not null) yield return "--hosts spreads TCP connections; it does not go with --ws";
        if (Port is < 1 or > 65535) yield return $"--port must be between 1 and 65535 (was {Port})";
        if (WebSocketUrl is not null && !(Uri.TryCreate(WebSocketUrl, UriKind.Absolute, out var ws) && ws.Scheme is "ws" or "wss"))
            yield return $"--ws must be a ws:// or wss:// URL (was '{WebSocketUrl}')";
        if (Devices is < 1 or > 100_000_000) yield return $"--devices must be between 1 and 100000000 (was {Devices})";
        if (ConnectRate <= 0) yield return $"--connect-rate must be above 0 (was {ConnectRate})";
        if (RampSeconds < 0) yield return $"--ramp must be 0 or more seconds (was {RampSeconds})";
        if (IntervalSeconds < 0.001) yield return $"--interval must be at least 0.001 seconds (was {IntervalSeconds})";
        if (JitterSeconds < 0 || JitterSeconds > IntervalSeconds) yield return $"--jitter must be between 0 and --interval (was {JitterSeconds})";
        if (Qos is < 0 or > 2) yield return $"--qos must be 0, 1 or 2 (was {Qos})";
        if (PayloadSize is < 0 or > 1_048_576) yield return $"--payload-size must be between 0 and 1048576 (was {PayloadSize})";
        if (!TopicPattern.Contains("{0}", StringComparison.Ordinal)) yield return $"--topic-pattern must contain {{0}} for the client id (was '{TopicPattern}')";
        if (KeepAliveSeconds is < 0 or > ushort.MaxValue) yield return $"--keepalive must be between 0 and 65535 (was {KeepAliveSeconds})";
        if (ReconnectMinSeconds <= 0 || ReconnectMaxSeconds < ReconnectMinSeconds)
            yield return $"--reconnect-min must be above 0 and --reconnect-max at least as large (were {ReconnectMinSeconds} and {ReconnectMaxSeconds})";
        if (ConnectTimeoutSeconds <= 0) yield return $"--connect-timeout must be above 0 (was {ConnectTimeoutSeconds})";
        if (DurationSeconds is <= 0 or > 86_400) yield return $"--duration must be above 0 and at most 86400 seconds (was {DurationSeconds})";
        if (ChurnRate is < 0 or > 20_000) yield return $"--churn-rate must be between 0 (none) and 20000 connections per second (was {ChurnRate})";
        if (ChurnRate > 0 && (WebSocketUrl is not null || UsesTls)) yield return "--churn-rate churns plain MQTT over TCP; it does not go with --ws or --tls";
        if (ChurnRate > 0 && !(IPAddress.TryParse(Host, out var churnHost) && IPAddress.IsLoopback(churnHost) && churnHost.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork))
            yield return $"--churn-rate connects from {ConnectionChurn.FirstSource} and up, so --host must be an IPv4 loopback address (was '{Host}')";
        if (MessagesPerDevice < 0) yield return $"--messages-per-device must be 0 (no limit) or more (was {MessagesPerDevice})";
        if (Processes is < 1 or > 64) yield return $"--processes must be between 1 and 64 (was {Processes})";
        if (PerSource < 1 || PerSource > MaxPerSource)
            yield return $"--per-source must be between 1 and {MaxPerSource} ({PortsPerSourceAndDestination} ports per source address and broker address, {(UsesRawMode ? $"{Brokers.Count} broker address(es) in raw mode" : "one port per connection in mqttnet mode")}) (was {PerSource})";
        if ((CertFile is null) != (KeyFile is null)) yield return "--cert-file and --key-file go together";
        if (CaFile is not null && !File.Exists(CaFile)) yield return $"--ca-file '{CaFile}' does not exist";
        if (Verify && PayloadTemplate is not null && !(PayloadTemplate.Contains("{dev}", StringComparison.Ordinal) && PayloadTemplate.Contains("{seq}", StringComparison.Ordinal)))
            yield return "--payload-template must carry \"dev\":{dev} and \"seq\":{seq} for --verify to count messages";

        string? idProblem = null;
        try
        {
            if (!ClientIdPattern.Contains("{0", StringComparison.Ordinal)) idProblem = "must contain {0} so that client ids differ";
            else if (ClientId(0).Length == 0) idProblem = "gives an empty client id";
        }
        catch (FormatException)
        {
            idProblem = "is not a valid format string (use {0} or {0:D6} for the index)";
        }

        if (idProblem is not null) yield return $"--client-id-pattern {idProblem} (was '{ClientIdPattern}')";

        var (_, local) = LocalDevices;
        var perProcess = (local + Processes - 1) / Processes + (Verify ? 1 : 0);
        if (perProcess > MaxConnectionsPerProcess)
            yield return $"--devices {Devices} over shard {Shard} and --processes {Processes} is {perProcess} connections per process; one process holds at most {MaxConnectionsPerProcess} (its open-file limit, ulimit -n, less a reserve): raise --processes to at least {(local + MaxConnectionsPerProcess - 2) / (MaxConnectionsPerProcess - 1)} or add shards";

        if (SourceBase is not null && WebSocketUrl is null)
        {
            var addresses = Processes * ((perProcess + PerSource - 1) / PerSource);
            if (SourceBase.GetAddressBytes()[3] + addresses - 1 > 254)
                yield return $"--source-base {SourceBase} with --per-source {PerSource} runs past x.x.x.254 for {local} devices in {Processes} processes; lower the base or raise --per-source";
        }
    }

    /// <summary>The first source address of child <paramref name="process"/>: each child gets its own block of addresses.</summary>
    public IPAddress? SourceBaseFor(int process)
    {
        if (SourceBase is null) return null;
        var (_, local) = LocalDevices;
        var perProcess = (local + Processes - 1) / Processes + (Verify ? 1 : 0);
        var block = (perProcess + PerSource - 1) / PerSource;
        var bytes = SourceBase.GetAddressBytes();
        bytes[3] = (byte)(bytes[3] + process * block);
        return new IPAddress(bytes);
    }
}
