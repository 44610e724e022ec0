using System.Text.Json;

namespace IotRealtime.Device.Simulator.Reports;

/// <summary>What an idle run found; printed at the end and optionally written as JSON for scripts.</summary>
public sealed record IdleReport(
    string Scenario,
    string Broker,
    int Requested,
    int Connected,
    int Failed,
    int DroppedDuringHold,
    int HeldAtEnd,
    double RampSeconds,
    double HoldSeconds,
    bool Cancelled,
    LatencySummary ConnectLatency,
    IReadOnlyDictionary<string, int> Failures)
{
    public void WriteJson(string path) =>
        File.WriteAllText(path, JsonSerializer.Serialize(this, ReportJsonContext.Default.IdleReport) + Environment.NewLine);

    public void WriteText(TextWriter output)
    {
        output.WriteLine($"scenario      {Scenario} against {Broker}");
        output.WriteLine($"requested     {Requested}");
        output.WriteLine($"connected     {Connected} in {RampSeconds:F1} s");
        output.WriteLine($"failed        {Failed}");
        foreach (var (reason, count) in Failures.OrderByDescending(f => f.Value)) output.WriteLine($"  {count,8}  {reason}");
        output.WriteLine($"dropped       {DroppedDuringHold} during the {HoldSeconds:F1} s hold");
        output.WriteLine($"held at end   {HeldAtEnd}");
        output.WriteLine($"connect       {ConnectLatency}");
        if (Cancelled) output.WriteLine("cancelled     yes (stopped by signal)");
    }
}
