using System.Text.Json.Serialization;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>Source-generated JSON for the fleet report, snake_case like the other reports.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(FleetReport))]
internal sealed partial class FleetJsonContext : JsonSerializerContext;
