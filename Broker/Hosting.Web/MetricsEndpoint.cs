using System.Text;
using IotRealtime.Hosting.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace IotRealtime.Hosting.Web;

/// <summary><c>GET /metrics</c> of every host, in the Prometheus text exposition format.</summary>
public static class MetricsEndpoint
{
    /// <summary>Writes <paramref name="first"/> (the broker's engine families), then every registered <see cref="IMetricsSource"/> in registration order.</summary>
    public static void Map(IEndpointRouteBuilder endpoints, Action<StringBuilder>? first = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapGet("/metrics", context =>
        {
            var w = new StringBuilder(4096);
            first?.Invoke(w);
            foreach (var source in context.RequestServices.GetServices<IMetricsSource>()) source.WriteMetrics(w);
            context.Response.ContentType = PrometheusText.ContentType;
            return context.Response.WriteAsync(w.ToString());
        });
    }
}
