using System.Globalization;
using System.Text.Json;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>What a fleet run found, for one process or merged over a parent's children; text at the end, JSON for scripts.</summary>
public sealed record FleetReport(
    string Scenario,
    string Broker,
    string Transport,
    string Protocol,
    string Shard,
    int Processes,
    int Devices,
    int Qos,
    double Seconds,
    long ConnectAttempts,
    long Connected,
    long ConnectFailures,
    long Disconnects,
    long Reconnects,
    long Redirects,
    long Published,
    long PublishFailures,
    long CommandsReceived,
    bool Verified,
    long Received,
    long Lost,
    long Duplicates,
    LatencyPercentiles ConnectLatency,
    LatencyPercentiles PublishAckLatency,
    LatencyPercentiles EndToEndLatency,
    FleetHistogram ConnectHistogram,
    FleetHistogram PublishAckHistogram,
    FleetHistogram EndToEndHistogram,
    IReadOnlyDictionary<string, int> Failures,
    bool Cancelled,
    long ChurnAttempts = 0,
    long ChurnConnected = 0,
    FleetHistogram? ChurnHistogram = null,
    string Mode = "",
    long StartedUnixMs = 0,
    long EndedUnixMs = 0,
    long LastFirstConnectUnixMs = 0)
{
    /// <summary>
    /// First connects per second from the run's start to the latest first CONNACK; for merged reports over the union
    /// of their times (earliest start to latest connect). 0 when the report has no times (older reports).
    /// </summary>
    public double ConnectsPerSecond =>
        StartedUnixMs > 0 && LastFirstConnectUnixMs > StartedUnixMs ? Math.Round(Connected * 1000.0 / (LastFirstConnectUnixMs - StartedUnixMs), 1) : 0;

    /// <summary>Connect latency of the short-lived churn connections (TCP connect to CONNACK).</summary>
    public LatencyPercentiles ChurnLatency => LatencyPercentiles.From((ChurnHistogram ?? new FleetHistogram([])).ToHistogram());

    /// <summary>Devices that connected at least once, as a share of the devices asked for.</summary>
    public double ConnectSuccessPercent => Devices == 0 ? 0 : Math.Round(100.0 * Connected / Devices, 2);

    public double PublishesPerSecond => Seconds <= 0 ? 0 : Math.Round(Published / Seconds, 1);

    /// <summary>Every device connected, and (when verified) every acknowledged message arrived exactly once.</summary>
    public bool Clean => Connected == Devices && (!Verified || (Lost == 0 && Duplicates == 0));

    public static FleetReport Merge(IReadOnlyList<FleetReport> parts, int processes, string shard)
    {
        if (parts.Count == 0) throw new ArgumentException("nothing to merge", nameof(parts));
        var connect = LatencyPercentiles.CreateHistogram();
        var ack = LatencyPercentiles.CreateHistogram();
        var e2e = LatencyPercentiles.CreateHistogram();
        var churn = LatencyPercentiles.CreateHistogram();
        var failures = new Dictionary<string, int>();
        foreach (var p in parts)
        {
            p.ConnectHistogram.AddTo(connect);
            p.PublishAckHistogram.AddTo(ack);
            p.EndToEndHistogram.AddTo(e2e);
            p.ChurnHistogram?.AddTo(churn);
            foreach (var (reason, count) in p.Failures) failures[reason] = failures.GetValueOrDefault(reason) + count;
        }

        var first = parts[0];
        var timed = parts.All(p => p.StartedUnixMs > 0 && p.EndedUnixMs >= p.StartedUnixMs);
        var started = timed ? parts.Min(p => p.StartedUnixMs) : 0;
        var ended = timed ? parts.Max(p => p.EndedUnixMs) : 0;
        return first with
        {
            Shard = shard,
            Processes = processes,
            Devices = parts.Sum(p => p.Devices),
            // The union of the runs' times where the reports carry them, else the longest run.
            Seconds = timed ? Math.Round((ended - started) / 1000.0, 2) : parts.Max(p => p.Seconds),
            Broker = string.Join(",", parts.Select(p => p.Broker).Distinct()),
            Mode = string.Join(",", parts.Select(p => p.Mode).Distinct()),
            StartedUnixMs = started,
            EndedUnixMs = ended,
            LastFirstConnectUnixMs = timed ? parts.Max(p => p.LastFirstConnectUnixMs) : 0,
            ConnectAttempts = parts.Sum(p => p.ConnectAttempts),
            Connected = parts.Sum(p => p.Connected),
            ConnectFailures = parts.Sum(p => p.ConnectFailures),
            Disconnects = parts.Sum(p => p.Disconnects),
            Reconnects = parts.Sum(p => p.Reconnects),
            Redirects = parts.Sum(p => p.Redirects),
            Published = parts.Sum(p => p.Published),
            PublishFailures = parts.Sum(p => p.PublishFailures),
            CommandsReceived = parts.Sum(p => p.CommandsReceived),
            Verified = parts.All(p => p.Verified),
            Received = parts.Sum(p => p.Received),
            Lost = parts.Sum(p => p.Lost),
            Duplicates = parts.Sum(p => p.Duplicates),
            ConnectLatency = LatencyPercentiles.From(connect),
            PublishAckLatency = LatencyPercentiles.From(ack),
            EndToEndLatency = LatencyPercentiles.From(e2e),
            ConnectHistogram = FleetHistogram.From(connect),
            PublishAckHistogram = FleetHistogram.From(ack),
            EndToEndHistogram = FleetHistogram.From(e2e),
            Failures = failures,
            Cancelled = parts.Any(p => p.Cancelled),
            ChurnAttempts = parts.Sum(p => p.ChurnAttempts),
            ChurnConnected = parts.Sum(p => p.ChurnConnected),
            ChurnHistogram = FleetHistogram.From(churn),
        };
    }

    public string ToJson() => JsonSerializer.Serialize(this, FleetJsonContext.Default.FleetReport);

    public static FleetReport? FromJson(string json) => JsonSerializer.Deserialize(json, FleetJsonContext.Default.FleetReport);

    public void WriteJson(string path) => File.WriteAllText(path, ToJson() + Environment.NewLine);

    public void WriteText(TextWriter output)
    {
        var c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c, $"scenario      fleet against {Broker} ({Transport}, MQTT {Protocol}, {Mode} devices), shard {Shard}, {Processes} process(es), QoS {Qos}"));
        output.WriteLine(string.Create(c, $"devices       {Devices}, connected {Connected} ({ConnectSuccessPercent:F2} %), {ConnectAttempts} attempts, {ConnectFailures} failed, {ConnectsPerSecond:F1} first connects/s"));
        output.WriteLine(string.Create(c, $"connections   {Disconnects} lost, {Reconnects} reconnects, {Redirects} redirects"));
        output.WriteLine(string.Create(c, $"published     {Published} in {Seconds:F1} s ({PublishesPerSecond:F1}/s), {PublishFailures} failed; {CommandsReceived} commands received"));
        if (Verified) output.WriteLine(string.Create(c, $"verified      received {Received}, lost {Lost}, duplicated {Duplicates}"));
        output.WriteLine($"connect       {ConnectLatency}");
        output.WriteLine($"publish->ack  {PublishAckLatency}");
        output.WriteLine($"end-to-end    {EndToEndLatency}");
        if (ChurnAttempts > 0)
            output.WriteLine(string.Create(c, $"churn         {ChurnConnected} of {ChurnAttempts} short-lived connections connected; connect {ChurnLatency}"));
        foreach (var (reason, count) in Failures.OrderByDescending(f => f.Value)) output.WriteLine($"  {count,8}  {reason}");
        if (Cancelled) output.WriteLine("cancelled     yes (stopped by signal)");
        output.WriteLine($"result        {(Clean ? "clean" : "NOT CLEAN")}");
    }
}
