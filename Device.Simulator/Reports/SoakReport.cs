using System.Globalization;
using System.Text.Json;

namespace IotRealtime.Device.Simulator.Reports;

/// <summary>
/// What a soak run found. The one guarantee it checks: every message whose PUBACK (QoS 1) or PUBCOMP (QoS 2) the
/// publisher got reached the persistent subscriber (<see cref="AcknowledgedLost"/> = 0), QoS 2 at most once.
/// </summary>
public sealed record SoakReport(
    string Scenario,
    string Broker,
    int Publishers,
    int PublishersQos1,
    int PublishersQos2,
    int RatePerSecond,
    double Seconds,
    long Published,
    long Acknowledged,
    long UnacknowledgedAtEnd,
    IReadOnlyList<string> UnacknowledgedSamples,
    long Received,
    long AcknowledgedLost,
    long AcknowledgedLostQos1,
    long AcknowledgedLostQos2,
    IReadOnlyList<string> LostSamples,
    long DuplicatesQos1,
    long DuplicatesQos2,
    IReadOnlyList<string> DuplicateSamples,
    long PacketIdsReused,
    long ConnectAttempts,
    long ConnectFailures,
    long ConnectionsLost,
    long Reconnects,
    long SessionsLost,
    long ClientKills,
    long ChurnAttempts,
    long ChurnConnected,
    LatencyPercentiles ChurnConnectLatency,
    LatencyPercentiles EndToEndLatency,
    IReadOnlyDictionary<string, int> Failures,
    bool Cancelled)
{
    /// <summary>No acknowledged message lost, no QoS 2 message delivered twice, no session or QoS 2 state forgotten, nothing left unacknowledged.</summary>
    public bool Clean => AcknowledgedLost == 0 && DuplicatesQos2 == 0 && SessionsLost == 0 && PacketIdsReused == 0 && UnacknowledgedAtEnd == 0 && Acknowledged > 0;

    public void WriteJson(string path) =>
        File.WriteAllText(path, JsonSerializer.Serialize(this, ReportJsonContext.Default.SoakReport) + Environment.NewLine);

    public void WriteText(TextWriter output)
    {
        var c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c, $"scenario      soak against {Broker}: {Publishers} persistent publishers ({PublishersQos1} QoS 1, {PublishersQos2} QoS 2) at {RatePerSecond} msg/s -> 1 persistent subscriber, {Seconds:F0} s"));
        output.WriteLine(string.Create(c, $"published     {Published}, acknowledged {Acknowledged} (PUBACK/PUBCOMP), unacknowledged at the end {UnacknowledgedAtEnd}"));
        output.WriteLine(string.Create(c, $"received      {Received} distinct; acknowledged but never received {AcknowledgedLost} (QoS 1 {AcknowledgedLostQos1}, QoS 2 {AcknowledgedLostQos2}); duplicates QoS 1 {DuplicatesQos1}, QoS 2 {DuplicatesQos2}"));
        if (UnacknowledgedSamples.Count > 0) output.WriteLine($"  unacknowledged (publisher/sequence): {string.Join(", ", UnacknowledgedSamples)}");
        if (LostSamples.Count > 0) output.WriteLine($"  lost (publisher/sequence): {string.Join(", ", LostSamples)}");
        if (DuplicateSamples.Count > 0) output.WriteLine($"  duplicated (publisher/sequence): {string.Join(", ", DuplicateSamples)}");
        if (PacketIdsReused > 0) output.WriteLine(string.Create(c, $"  {PacketIdsReused} QoS 2 PUBLISHes came under a packet id still awaiting PUBREL with another message"));
        output.WriteLine(string.Create(c, $"connections   {ConnectAttempts} attempts, {ConnectFailures} failed, {ConnectionsLost} lost, {Reconnects} reconnects, {SessionsLost} sessions not present, {ClientKills} client kills"));
        output.WriteLine(string.Create(c, $"churn         {ChurnConnected} of {ChurnAttempts} short-lived connections connected; connect {ChurnConnectLatency}"));
        output.WriteLine($"end-to-end    {EndToEndLatency}");
        foreach (var (reason, count) in Failures.OrderByDescending(f => f.Value).Take(20)) output.WriteLine($"  {count,8}  {reason}");
        if (Cancelled) output.WriteLine("cancelled     yes (stopped by signal)");
        output.WriteLine($"result        {(Clean ? "clean" : "NOT CLEAN")}");
    }
}
