using System.Globalization;
using System.Text.Json;

namespace IotRealtime.Device.Simulator.Reports;

/// <summary>
/// What a fanout, p2p, shared or latency run found. A delivery is one message arriving at one subscriber, so a
/// fan-out message to S subscribers is S deliveries; <see cref="ExpectedDeliveries"/> is what a lossless broker delivers.
/// </summary>
public sealed record BenchReport(
    string Scenario,
    string Broker,
    int Publishers,
    int Subscribers,
    int Qos,
    int PayloadBytes,
    int Inflight,
    int RatePerSecond,
    int ConnectFailures,
    long Published,
    long Acked,
    long Deliveries,
    long ExpectedDeliveries,
    long Lost,
    long Duplicates,
    long Foreign,
    int SubscribersWithLoss,
    double PublishSeconds,
    double TotalSeconds,
    double SteadyDeliveriesPerSecond,
    double SteadyMessagesPerSecond,
    double OverallDeliveriesPerSecond,
    LatencyPercentiles PublishAckLatency,
    LatencyMicros EndToEndMicros,
    bool Stalled,
    bool Cancelled,
    IReadOnlyDictionary<string, int> Failures)
{
    /// <summary>Deliveries a lossless broker makes: every message to each subscriber that should get it.</summary>
    public static long Expected(long published, int deliveriesPerMessage) => published * deliveriesPerMessage;

    /// <summary>Message rate from a delivery rate: a fan-out message counts once however many subscribers get it.</summary>
    public static double MessagesPerSecond(double deliveriesPerSecond, int deliveriesPerMessage) =>
        deliveriesPerMessage < 1 ? 0 : deliveriesPerSecond / deliveriesPerMessage;

    /// <summary>Every message reached every subscriber that should get it exactly once; every QoS 1/2 publish was acknowledged.</summary>
    public bool Clean => ConnectFailures == 0 && !Stalled && Lost == 0 && Duplicates == 0 && Foreign == 0
                         && Deliveries == ExpectedDeliveries && (Qos == 0 || Acked == Published);

    public void WriteJson(string path) =>
        File.WriteAllText(path, JsonSerializer.Serialize(this, ReportJsonContext.Default.BenchReport) + Environment.NewLine);

    public void WriteText(TextWriter output)
    {
        var c = CultureInfo.InvariantCulture;
        var loop = RatePerSecond > 0 ? $"open loop at {RatePerSecond} msg/s" : $"<= {Inflight} in flight";
        output.WriteLine(string.Create(c, $"scenario      {Scenario} against {Broker}: {Publishers} publishers, {Subscribers} subscribers, QoS {Qos}, {PayloadBytes} B, {loop}"));
        output.WriteLine(string.Create(c, $"published     {Published} in {PublishSeconds:F2} s (acked {Acked})"));
        output.WriteLine(string.Create(c, $"deliveries    {Deliveries} of {ExpectedDeliveries} (lost {Lost}, duplicated {Duplicates}, foreign {Foreign}, subscribers with loss {SubscribersWithLoss})"));
        output.WriteLine(string.Create(c, $"throughput    {SteadyDeliveriesPerSecond:F0} deliveries/s = {SteadyMessagesPerSecond:F0} msg/s steady (10-90 %), {OverallDeliveriesPerSecond:F0} deliveries/s overall"));
        output.WriteLine($"publish->ack  {PublishAckLatency}");
        output.WriteLine($"end-to-end    {EndToEndMicros}");
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
