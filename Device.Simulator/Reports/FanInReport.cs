using System.Globalization;
using System.Text.Json;

namespace IotRealtime.Device.Simulator.Reports;

/// <summary>What a fan-in run found; printed at the end and optionally written as JSON for scripts.</summary>
public sealed record FanInReport(
    string Scenario,
    string Broker,
    int Publishers,
    int Qos,
    int PayloadBytes,
    int Inflight,
    int Ahead,
    string SubscriberSession,
    int ConnectFailures,
    long Published,
    long Acked,
    long Received,
    long Lost,
    long Duplicates,
    long Foreign,
    double PublishSeconds,
    double TotalSeconds,
    double SteadyMessagesPerSecond,
    double OverallMessagesPerSecond,
    LatencyPercentiles PublishAckLatency,
    LatencyPercentiles EndToEndLatency,
    bool Stalled,
    bool Cancelled,
    IReadOnlyDictionary<string, int> Failures)
{
    /// <summary>Every published message arrived exactly once and every QoS 1/2 publish was acknowledged.</summary>
    public bool Clean => ConnectFailures == 0 && !Stalled && Lost == 0 && Duplicates == 0 && Received == Published
                         && (Qos == 0 || Acked == Published);

    /// <summary>Lost messages as a share of those published, in percent.</summary>
    public double LostPercent => Published == 0 ? 0 : Math.Round(100.0 * Lost / Published, 3);

    public void WriteJson(string path) =>
        File.WriteAllText(path, JsonSerializer.Serialize(this, ReportJsonContext.Default.FanInReport) + Environment.NewLine);

    public void WriteText(TextWriter output)
    {
        var c = CultureInfo.InvariantCulture;
        var loop = Ahead > 0 ? $"<= {Ahead} ahead per publisher" : $"<= {Inflight} in flight";
        output.WriteLine(string.Create(c, $"scenario      {Scenario} against {Broker}: {Publishers} publishers -> 1 subscriber ({SubscriberSession} session), QoS {Qos}, {PayloadBytes} B, {loop}"));
        output.WriteLine(string.Create(c, $"published     {Published} in {PublishSeconds:F2} s (acked {Acked})"));
        output.WriteLine(string.Create(c, $"received      {Received} (lost {Lost} = {LostPercent:F3} %, duplicated {Duplicates}, foreign {Foreign})"));
        output.WriteLine(string.Create(c, $"throughput    {SteadyMessagesPerSecond:F0} msg/s steady (10-90 %), {OverallMessagesPerSecond:F0} msg/s overall"));
        output.WriteLine($"publish->ack  {PublishAckLatency}");
        output.WriteLine($"end-to-end    {EndToEndLatency}");
        if (ConnectFailures > 0)
        {
            output.WriteLine($"connect fails {ConnectFailures}");
            foreach (var (reason, count) in Failures.OrderByDescending(f => f.Value)) output.WriteLine($"  {count,8}  {reason}");
        }

        if (Stalled) output.WriteLine("stalled       yes (nothing arrived within the stall timeout)");
        if (Cancelled) output.WriteLine("cancelled     yes (stopped by signal)");
        output.WriteLine($"result        {(Clean ? "clean" : "NOT CLEAN")}");
    }
}
