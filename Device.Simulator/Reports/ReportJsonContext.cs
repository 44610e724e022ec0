using System.Text.Json.Serialization;

namespace IotRealtime.Device.Simulator.Reports;

/// <summary>Source-generated JSON for every report, snake_case for scripts.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(IdleReport))]
[JsonSerializable(typeof(FanInReport))]
[JsonSerializable(typeof(BenchReport))]
[JsonSerializable(typeof(SoakReport))]
internal sealed partial class ReportJsonContext : JsonSerializerContext;
