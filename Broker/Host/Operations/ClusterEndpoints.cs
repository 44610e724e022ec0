using System.Runtime.CompilerServices;
using System.Text.Json;
using IotRealtime.Broker.Cluster;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace IotRealtime.Broker.Host.Operations;

/// <summary><c>GET /api/cluster</c> (admin API rules): mapped only when <c>Cluster:Enabled</c>, so a single node loads no cluster type.</summary>
public static class ClusterEndpoints
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void MapCluster(WebApplication app)
    {
        var admin = app.Services.GetRequiredService<AdminOptions>();
        app.MapGet("/api/cluster", async context =>
        {
            if (!OperationsEndpoints.IsAuthorized(context, admin))
            {
                await OperationsEndpoints.Deny(context, admin).ConfigureAwait(false);
                return;
            }
            context.Response.ContentType = "application/json";
            await using var writer = new Utf8JsonWriter(context.Response.BodyWriter);
            ClusterHosting.WriteStatus(context.RequestServices, writer);
            await writer.FlushAsync().ConfigureAwait(false);
        });
    }
}
