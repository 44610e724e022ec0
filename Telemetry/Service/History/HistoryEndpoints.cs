using System.Text.Json;
using IotRealtime.Hosting.Metrics;
using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.Influx;
using IotRealtime.Telemetry.Sinks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace IotRealtime.Telemetry.History;

/// <summary>
/// The history API the dashboards chart from (PostgreSQL when configured, else InfluxDB 1.x when it is the only
/// store), and the InfluxDB sink's registration:
/// <c>GET /api/history?device=&amp;metric=&amp;from=&amp;to=&amp;step=</c> (buckets of min/max/avg/last/count),
/// <c>GET /api/history/devices</c>, <c>GET /api/history/metrics?device=</c>. Answers carry
/// <c>Access-Control-Allow-Origin: *</c> so a dashboard on another origin can call them; preflight OPTIONS is answered.
/// </summary>
public static class HistoryEndpoints
{
    public const string Prefix = "/api/history";

    /// <summary>Devices one /devices answer lists at most; page on with after=&lt;last device&gt;.</summary>
    public const int MaxDevices = 10_000;

    public static void AddServices(IServiceCollection services, TelemetrySettings settings)
    {
        if (settings.HasSink(TelemetrySettings.InfluxSink))
        {
            services.AddSingleton(sp => new InfluxSink(InfluxSinkOptions.From(settings.Influx), settings.Kafka.GroupId,
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<InfluxSink>>()));
            services.AddSingleton<ITelemetrySink>(sp => sp.GetRequiredService<InfluxSink>());
            services.AddSingleton<IMetricsSource>(sp => new InfluxSinkMetrics(sp.GetRequiredService<InfluxSink>()));
        }
        if (!string.IsNullOrWhiteSpace(settings.Postgres.ConnectionString))
        {
            services.AddSingleton<IHistoryStore>(sp => new PostgresHistoryStore(
                new NpgsqlDataSourceBuilder(settings.Postgres.ConnectionString) { Name = "iotrealtime-history" }.Build(),
                sp.GetRequiredService<TimeProvider>()));
        }
        else if (settings.HasSink(TelemetrySettings.InfluxSink) && settings.Influx.Version == 1)
        {
            // InfluxDB is the only store: history comes from it (InfluxQL). A dashboard request should fail fast, not
            // wait out the sink's minute of write retries.
            services.AddSingleton<IHistoryStore>(sp =>
            {
                var options = InfluxSinkOptions.From(settings.Influx);
                options.RetryForMs = 1_000;
                return new InfluxHistoryStore(options, new InfluxClient(options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<InfluxHistoryStore>>()));
            });
        }
    }

    public static void Map(WebApplication app)
    {
        app.MapGet(Prefix, HistoryAsync);
        app.MapGet(Prefix + "/devices", DevicesAsync);
        app.MapGet(Prefix + "/metrics", MetricsAsync);
        app.MapMethods(Prefix, [HttpMethods.Options], Preflight);
        app.MapMethods(Prefix + "/{**rest}", [HttpMethods.Options], Preflight);
    }

    static async Task HistoryAsync(HttpContext context)
    {
        AllowCrossOrigin(context.Response);
        var now = context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        if (!HistoryQuery.TryParse(context.Request.Query, now, out var query, out var error))
        {
            await BadRequestAsync(context, error!).ConfigureAwait(false);
            return;
        }
        if (Store(context) is not { } store)
        {
            await NoStoreAsync(context).ConfigureAwait(false);
            return;
        }
        IReadOnlyList<HistoryBucket> buckets;
        try
        {
            buckets = await store.QueryAsync(query!, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, context))
        {
            await StoreFailedAsync(context, e).ConfigureAwait(false);
            return;
        }
        await WriteJsonAsync(context, w =>
        {
            w.WriteString("device", query!.Device);
            w.WriteString("metric", query.Metric);
            w.WriteNumber("step", query.StepSeconds);
            w.WriteString("from", query.From.UtcDateTime);
            w.WriteString("to", query.To.UtcDateTime);
            w.WriteStartArray("buckets");
            foreach (var b in buckets)
            {
                w.WriteStartObject();
                w.WriteString("t", b.Start.UtcDateTime);
                WriteNumber(w, "min", b.Min);
                WriteNumber(w, "max", b.Max);
                WriteNumber(w, "avg", b.Avg);
                WriteNumber(w, "last", b.Last);
                w.WriteNumber("count", b.Count);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    static async Task DevicesAsync(HttpContext context)
    {
        AllowCrossOrigin(context.Response);
        var q = context.Request.Query;
        var error = HistoryQuery.CheckUnknown(q, ["after", "limit"]);
        var limit = MaxDevices;
        if (error is null && q.ContainsKey("limit") && (!int.TryParse(q["limit"], out limit) || limit is < 1 or > MaxDevices))
        {
            error = $"limit '{q["limit"]}' must be a whole number from 1 to {MaxDevices}.";
        }
        if (error is not null)
        {
            await BadRequestAsync(context, error).ConfigureAwait(false);
            return;
        }
        if (Store(context) is not { } store)
        {
            await NoStoreAsync(context).ConfigureAwait(false);
            return;
        }
        IReadOnlyList<string> devices;
        try
        {
            // One more than asked tells whether another page follows.
            devices = await store.DevicesAsync(q.ContainsKey("after") ? q["after"].ToString() : null, limit + 1, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, context))
        {
            await StoreFailedAsync(context, e).ConfigureAwait(false);
            return;
        }
        await WriteJsonAsync(context, w =>
        {
            w.WriteStartArray("devices");
            foreach (var d in devices.Take(limit)) w.WriteStringValue(d);
            w.WriteEndArray();
            w.WriteBoolean("more", devices.Count > limit);
        }).ConfigureAwait(false);
    }

    static async Task MetricsAsync(HttpContext context)
    {
        AllowCrossOrigin(context.Response);
        var q = context.Request.Query;
        var error = HistoryQuery.CheckUnknown(q, ["device"]);
        if (error is null && q["device"].ToString().Length == 0) error = "device is required (e.g. /api/history/metrics?device=sensor-1).";
        if (error is not null)
        {
            await BadRequestAsync(context, error).ConfigureAwait(false);
            return;
        }
        if (Store(context) is not { } store)
        {
            await NoStoreAsync(context).ConfigureAwait(false);
            return;
        }
        var device = q["device"].ToString();
        IReadOnlyList<string> metrics;
        try
        {
            metrics = await store.MetricsAsync(device, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStoreFailure(e, context))
        {
            await StoreFailedAsync(context, e).ConfigureAwait(false);
            return;
        }
        await WriteJsonAsync(context, w =>
        {
            w.WriteString("device", device);
            w.WriteStartArray("metrics");
            foreach (var m in metrics) w.WriteStringValue(m);
            w.WriteEndArray();
        }).ConfigureAwait(false);
    }

    static Task Preflight(HttpContext context)
    {
        AllowCrossOrigin(context.Response);
        context.Response.Headers.AccessControlAllowMethods = "GET, OPTIONS";
        var requested = context.Request.Headers.AccessControlRequestHeaders;
        if (requested.Count > 0) context.Response.Headers.AccessControlAllowHeaders = requested;
        context.Response.Headers.AccessControlMaxAge = "86400";
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        return Task.CompletedTask;
    }

    static void AllowCrossOrigin(HttpResponse response) => response.Headers.AccessControlAllowOrigin = "*";

    static IHistoryStore? Store(HttpContext context) => context.RequestServices.GetService<IHistoryStore>();

    static bool IsStoreFailure(Exception e, HttpContext context) =>
        e is NpgsqlException or InfluxException or HttpRequestException or TimeoutException
        || (e is OperationCanceledException && !context.RequestAborted.IsCancellationRequested);

    static Task BadRequestAsync(HttpContext context, string error) => ErrorAsync(context, StatusCodes.Status400BadRequest, error);

    static Task NoStoreAsync(HttpContext context) => ErrorAsync(context, StatusCodes.Status503ServiceUnavailable,
        "history needs PostgreSQL (Telemetry:Postgres:ConnectionString; the postgres sink writes the tables it reads) or InfluxDB 1.x as the influxdb sink.");

    static Task StoreFailedAsync(HttpContext context, Exception e) => ErrorAsync(context, StatusCodes.Status503ServiceUnavailable,
        $"the history store did not answer: {e.Message}");

    static Task ErrorAsync(HttpContext context, int status, string error)
    {
        context.Response.StatusCode = status;
        return WriteJsonAsync(context, w => w.WriteString("error", error));
    }

    static void WriteNumber(Utf8JsonWriter w, string name, double value)
    {
        // JSON has no NaN or infinity; a stored one is shown as null rather than breaking the whole answer.
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteNull(name);
    }

    static async Task WriteJsonAsync(HttpContext context, Action<Utf8JsonWriter> body)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await using var w = new Utf8JsonWriter(context.Response.BodyWriter);
        w.WriteStartObject();
        body(w);
        w.WriteEndObject();
        await w.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }
}
