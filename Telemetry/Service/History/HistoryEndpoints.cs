using IotRealtime.Telemetry.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace IotRealtime.Telemetry.History;

/// <summary>
/// The history API (GET /api/history...) and the InfluxDB sink. TelemetryHost calls <see cref="AddServices"/> while
/// building its services (register an InfluxDB sink there as <c>ITelemetrySink</c> when settings.HasSink("influxdb"):
/// the ingest pipeline runs one writer per registered sink) and <see cref="Map"/> after building the app.
/// </summary>
public static class HistoryEndpoints
{
    public static void AddServices(IServiceCollection services, TelemetrySettings settings) { }

    public static void Map(WebApplication app) { }
}
