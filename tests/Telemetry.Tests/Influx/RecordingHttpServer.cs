using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry.Tests.Influx;

/// <summary>
/// A loopback HTTP server (Kestrel, port 0) that records every request and answers from a script: stands in for
/// InfluxDB 2.x, which is not installed here, to check the shape of the sink's v2 requests.
/// </summary>
public sealed class RecordingHttpServer : IAsyncDisposable
{
    public sealed record Recorded(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, string Body);

    readonly WebApplication _app;
    readonly ConcurrentQueue<(int Status, string Body, string ContentType)> _script = new();

    RecordingHttpServer(WebApplication app) => _app = app;

    public ConcurrentQueue<Recorded> Requests { get; } = new();

    /// <summary>What requests get once the script is used up.</summary>
    public Func<Recorded, (int Status, string Body, string ContentType)> Default { get; set; } = _ => (204, string.Empty, "text/plain");

    public Uri Url { get; private set; } = null!;

    public void Enqueue(int status, string body = "", string contentType = "application/json") => _script.Enqueue((status, body, contentType));

    public static async Task<RecordingHttpServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new RecordingHttpServer(app);
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        server.Url = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/");
        return server;
    }

    async Task HandleAsync(HttpContext context)
    {
        Stream body = context.Request.Body;
        if (context.Request.Headers.ContentEncoding == "gzip") body = new GZipStream(body, CompressionMode.Decompress);
        using var reader = new StreamReader(body);
        var text = await reader.ReadToEndAsync();
        var recorded = new Recorded(context.Request.Method, context.Request.Path + context.Request.QueryString,
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase), text);
        Requests.Enqueue(recorded);
        var (status, answer, contentType) = _script.TryDequeue(out var next) ? next : Default(recorded);
        context.Response.StatusCode = status;
        if (answer.Length > 0)
        {
            context.Response.ContentType = contentType;
            await context.Response.WriteAsync(answer);
        }
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
