using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Hosting.Web;

/// <summary>
/// The base of the broker, bridges and telemetry hosts: each is an object a test or benchmark starts in-process and
/// disposes, and the same object behind its executable's <c>Main</c>. Builder, logging, lifetime, start, exit codes,
/// and disposal are made here once (<c>/metrics</c> in <see cref="MetricsEndpoint"/>); a host adds its services,
/// listeners and endpoints.
/// </summary>
public abstract class EmbeddableHost : IAsyncDisposable
{
    readonly WebApplication _app;
    int _disposed;

    protected EmbeddableHost(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        _app = app;
    }

    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// An empty builder: configuration comes only from <paramref name="configuration"/>, so an embedded host is not changed
    /// by whatever appsettings.json or environment variables the embedding process happens to have. Logs go to the
    /// console, one UTC-stamped line each (and to <paramref name="logging"/> too, e.g. a test that fails on logged errors);
    /// ASP.NET's per-request logs start at Warning, and the <c>Logging</c> section can change that. Kestrel is added
    /// without a Server header, with routing; the host adds its listeners.
    /// </summary>
    /// <param name="consoleLifetime">True for the executable (stops on SIGINT/SIGTERM); false when embedded (stops when disposed).</param>
    protected static WebApplicationBuilder CreateBuilder(IConfiguration configuration, bool consoleLifetime, ILoggerProvider? logging = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fff ";
            o.UseUtcTimestamp = true;
        });
        if (logging is not null) builder.Logging.AddProvider(logging);
        if (!consoleLifetime) builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.AddServerHeader = false);
        builder.Services.AddRoutingCore();
        return builder;
    }

    /// <summary>Runs <paramref name="beforeListening"/> (e.g. connect upstream), then starts serving; a failed start disposes <paramref name="app"/> and rethrows.</summary>
    protected static async Task StartServingAsync(WebApplication app, Func<IServiceProvider, CancellationToken, Task>? beforeListening, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(app);
        try
        {
            if (beforeListening is not null) await beforeListening(app.Services, ct).ConfigureAwait(false);
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The executable's main loop: <c>-h</c>/<c>--help</c>/<c>help</c> prints <paramref name="usage"/>; otherwise starts the host
    /// and serves until SIGINT/SIGTERM. A start failure that <paramref name="describeStartFailure"/> recognises is printed
    /// (one message, no stack trace) and gives <see cref="ExitCode.StartFailed"/>; any other propagates.
    /// </summary>
    protected static async Task<int> RunUntilShutdownAsync(string[] args, string usage, Func<Task<EmbeddableHost>> start, Func<Exception, string?> describeStartFailure)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(describeStartFailure);
        if (args.Length > 0 && args[0] is "-h" or "--help" or "help")
        {
            await Console.Out.WriteLineAsync(usage).ConfigureAwait(false);
            return ExitCode.Ok;
        }
        EmbeddableHost host;
        try
        {
            host = await start().ConfigureAwait(false);
        }
        catch (Exception e) when (describeStartFailure(e) is not null)
        {
            await Console.Error.WriteLineAsync(describeStartFailure(e)).ConfigureAwait(false);
            return ExitCode.StartFailed;
        }
        await using (host.ConfigureAwait(false))
        {
            await host._app.WaitForShutdownAsync().ConfigureAwait(false);
        }
        return ExitCode.Ok;
    }

    /// <summary>Called once, before the host stops (a host logs that it is stopping).</summary>
    protected virtual void OnStopping()
    {
    }

    /// <summary>Stops serving (hosted services stop, connections close), then disposes the services; safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        OnStopping();
        try
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            // Disposing the container disposes what the host built (the engine, sinks) after Kestrel has closed every connection.
            await _app.DisposeAsync().ConfigureAwait(false);
        }
        GC.SuppressFinalize(this);
    }
}
