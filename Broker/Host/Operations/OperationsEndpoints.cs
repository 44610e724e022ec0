using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Hosting.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace IotRealtime.Broker.Host.Operations;

/// <summary>/readyz, /metrics and the admin API under /api (see docs/operations.md).</summary>
public static class OperationsEndpoints
{
    /// <summary>Payload bytes shown by GET /api/retained.</summary>
    const int PreviewBytes = 256;

    internal static void AddOperations(IServiceCollection services, AdminOptions options)
    {
        services.AddSingleton(options);
        services.AddHostedService<ShutdownDrainService>();
    }

    internal static void MapOperations(WebApplication app)
    {
        var broker = app.Services.GetRequiredService<MqttBroker>();
        var options = app.Services.GetRequiredService<AdminOptions>();
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        var time = app.Services.GetRequiredService<TimeProvider>();

        app.MapGet("/readyz", context =>
        {
            var reason = NotReadyReason(broker, lifetime, context.RequestServices.GetServices<IBrokerHealthCheck>());
            context.Response.ContentType = "text/plain";
            context.Response.StatusCode = reason is null ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            return context.Response.WriteAsync(reason is null ? "ready" : "not ready: " + reason);
        });
        MetricsEndpoint.Map(app, w => PrometheusExporter.WriteEngine(w, broker, time));

        RequestDelegate Admin(RequestDelegate handler) => context => IsAuthorized(context, options) ? handler(context) : Deny(context, options);

        app.MapGet("/api/clients", Admin(context => Json(context, broker.GetClients(), AdminJsonContext.Default.IReadOnlyListClientSnapshot)));
        app.MapGet("/api/clients/{id}", Admin(context => broker.GetClient(Id(context)) is { } client
            ? Json(context, client, AdminJsonContext.Default.ClientSnapshot)
            : NotFound(context, "no connected client with that id")));
        app.MapDelete("/api/clients/{id}", Admin(context => broker.DisconnectClient(Id(context))
            ? NoContent(context)
            : NotFound(context, "no connected client with that id")));
        app.MapGet("/api/sessions", Admin(context => Json(context, broker.GetSessions(), AdminJsonContext.Default.IReadOnlyListSessionSnapshot)));
        app.MapGet("/api/sessions/{id}", Admin(context => broker.GetSession(Id(context)) is { } session
            ? Json(context, session, AdminJsonContext.Default.SessionSnapshot)
            : NotFound(context, "no session with that id")));
        app.MapDelete("/api/sessions/{id}", Admin(context => broker.DeleteSession(Id(context))
            ? NoContent(context)
            : NotFound(context, "no session with that id")));
        app.MapGet("/api/retained", Admin(context =>
        {
            var filter = context.Request.Query["filter"].FirstOrDefault() ?? "#";
            IReadOnlyList<RetainedSnapshot> retained;
            try
            {
                retained = broker.GetRetained(filter);
            }
            catch (ArgumentException e)
            {
                return Error(context, StatusCodes.Status400BadRequest, e.Message);
            }
            return Json(context, retained.Select(ToDto).ToList(), AdminJsonContext.Default.ListRetainedMessageDto);
        }));
        app.MapDelete("/api/retained", Admin(context =>
        {
            var filter = context.Request.Query["topic"].FirstOrDefault() ?? context.Request.Query["filter"].FirstOrDefault();
            if (string.IsNullOrEmpty(filter))
            {
                return Error(context, StatusCodes.Status400BadRequest, "give ?topic=<topic> or ?filter=<topic filter> (filter=# clears all but $ topics)");
            }
            try
            {
                return Json(context, new RetainedClearedDto(broker.ClearRetained(filter)), AdminJsonContext.Default.RetainedClearedDto);
            }
            catch (ArgumentException e)
            {
                return Error(context, StatusCodes.Status400BadRequest, e.Message);
            }
        }));
        app.MapPost("/api/drain", Admin(async context =>
        {
            DrainRequestDto? request = null;
            if (context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0)
            {
                try
                {
                    request = await JsonSerializer.DeserializeAsync(context.Request.Body, AdminJsonContext.Default.DrainRequestDto, context.RequestAborted);
                }
                catch (JsonException e)
                {
                    await Error(context, StatusCodes.Status400BadRequest, "body must be JSON {\"windowSeconds\": n, \"serverReference\": \"host:port\"}: " + e.Message);
                    return;
                }
            }
            var window = request?.WindowSeconds ?? options.DrainWindowSeconds;
            if (window is < 0 or > 3600 || double.IsNaN(window))
            {
                await Error(context, StatusCodes.Status400BadRequest, "windowSeconds must be between 0 and 3600");
                return;
            }
            if (broker.IsDraining)
            {
                await Error(context, StatusCodes.Status409Conflict, "already draining; GET /api/drain for its status");
                return;
            }
            // runs on its own: the request only starts the drain (it may take the whole window)
            _ = broker.DrainAsync(TimeSpan.FromSeconds(window), request?.ServerReference, CancellationToken.None);
            context.Response.StatusCode = StatusCodes.Status202Accepted;
            await context.Response.WriteAsJsonAsync(ToDto(broker.GetDrainStatus()!), AdminJsonContext.Default.DrainStatusDto);
        }));
        app.MapGet("/api/drain", Admin(context => broker.GetDrainStatus() is { } status
            ? Json(context, ToDto(status), AdminJsonContext.Default.DrainStatusDto)
            : NotFound(context, "not draining")));
    }

    /// <summary>Null when ready; else the first reason why not.</summary>
    static string? NotReadyReason(MqttBroker broker, IHostApplicationLifetime lifetime, IEnumerable<IBrokerHealthCheck> checks)
    {
        if (!lifetime.ApplicationStarted.IsCancellationRequested) return "starting";
        if (lifetime.ApplicationStopping.IsCancellationRequested) return "stopping";
        if (broker.IsDraining) return "draining";
        if (broker.Store is { Healthy: false }) return "store: a write failed";
        foreach (var check in checks)
        {
            var health = check.Check();
            if (!health.Healthy) return $"{check.Name}: {health.Reason ?? "unhealthy"}";
        }
        return null;
    }

    /// <summary>With a token: a matching bearer token (compared in constant time). Without one: loopback callers only.</summary>
    internal static bool IsAuthorized(HttpContext context, AdminOptions options)
    {
        if (string.IsNullOrEmpty(options.Token))
        {
            return context.Connection.RemoteIpAddress is { } address && IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);
        }
        var header = context.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        // hashing first makes the comparison constant-time in the length too
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()));
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(options.Token));
        return CryptographicOperations.FixedTimeEquals(given, expected);
    }

    internal static Task Deny(HttpContext context, AdminOptions options)
    {
        if (string.IsNullOrEmpty(options.Token))
        {
            return Error(context, StatusCodes.Status403Forbidden, "the admin API without Admin:Token answers loopback callers only");
        }
        context.Response.Headers.WWWAuthenticate = "Bearer";
        return Error(context, StatusCodes.Status401Unauthorized, "missing or wrong bearer token");
    }

    static string Id(HttpContext context) => (string)context.Request.RouteValues["id"]!;

    static Task Json<T>(HttpContext context, T value, JsonTypeInfo<T> type) => context.Response.WriteAsJsonAsync(value, type);

    static Task NoContent(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        return Task.CompletedTask;
    }

    static Task NotFound(HttpContext context, string message) => Error(context, StatusCodes.Status404NotFound, message);

    internal static Task Error(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new ErrorDto(message), AdminJsonContext.Default.ErrorDto);
    }

    static RetainedMessageDto ToDto(RetainedSnapshot m)
    {
        var truncated = m.Payload.Length > PreviewBytes;
        var preview = m.Payload[..Math.Min(m.Payload.Length, PreviewBytes)];
        string encoding;
        string payload;
        if (m.IsUtf8)
        {
            // cut at a character boundary so the preview stays valid text
            var text = Encoding.UTF8.GetString(preview.Span);
            if (truncated && text.Length > 0 && text[^1] == '\uFFFD') text = text[..^1];
            (encoding, payload) = ("utf8", text);
        }
        else
        {
            (encoding, payload) = ("base64", Convert.ToBase64String(preview.Span));
        }
        return new RetainedMessageDto(m.Topic, m.QoS, m.Size, m.ReceivedAt, m.ExpiresAt, m.ContentType, encoding, payload, truncated);
    }

    static DrainStatusDto ToDto(DrainStatus s) => new(
        s.Completed ? "completed" : "draining", s.StartedAt, s.Window.TotalSeconds, s.StartedAt + s.Window, s.ServerReference,
        s.ConnectionsAtStart, s.Remaining, s.ServerReference is null ? "0x8B server shutting down" : "0x9D server moved");
}
