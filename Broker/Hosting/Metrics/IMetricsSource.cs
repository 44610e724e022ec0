using System.Text;

namespace IotRealtime.Hosting.Metrics;

/// <summary>
/// A component that adds its own families to <c>/metrics</c> (Kafka forwarder, bridges, telemetry). Registered in the
/// host's services; the exporter calls every one after the engine's families.
/// </summary>
public interface IMetricsSource
{
    void WriteMetrics(StringBuilder w);
}
