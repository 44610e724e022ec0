using System.Text;
using IotRealtime.Hosting.Metrics;

namespace IotRealtime.Telemetry.Influx;

/// <summary>The InfluxDB sink's own counters on /metrics (readings written per sink are in TelemetryMetrics).</summary>
public sealed class InfluxSinkMetrics(InfluxSink sink) : IMetricsSource
{
    public void WriteMetrics(StringBuilder w)
    {
        PrometheusText.Family(w, "iotrealtime_telemetry_influx_requests_total", "counter", "HTTP requests sent to InfluxDB, retries included.", sink.Requests);
        PrometheusText.Family(w, "iotrealtime_telemetry_influx_retries_total", "counter", "InfluxDB requests sent again after a 5xx, 429, timeout or connection failure.", sink.Retries);
        PrometheusText.Family(w, "iotrealtime_telemetry_influx_lines_refused_total", "counter", "Lines InfluxDB refused (400/422), parked in telemetry_parked.", sink.LinesRefused);
        PrometheusText.Family(w, "iotrealtime_telemetry_influx_readings_rejected_total", "counter", "Readings line protocol cannot carry (NaN, infinity, unwritable names), parked.", sink.ReadingsRejected);
        PrometheusText.Family(w, "iotrealtime_telemetry_influx_payloads_parked_total", "counter", "Undecodable payloads recorded in telemetry_parked.", sink.PayloadsParked);
    }
}
