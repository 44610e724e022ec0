using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;

namespace IotRealtime.Bridges.Tests.Browser;

/// <summary>
/// Serves the built dashboard (the test output's wwwroot, lib files included) on 127.0.0.1 port 0, for page tests that
/// need no bridges endpoints (mqtt.js talks to the broker's own /mqtt listener).
/// </summary>
public sealed class StaticDashboardServer : IAsyncDisposable
{
    readonly WebApplication _app;

    StaticDashboardServer(WebApplication app, Uri baseUri)
    {
        _app = app;
        BaseUri = baseUri;
    }

    public Uri BaseUri { get; }

    public static string WebRoot { get; } = Path.Combine(AppContext.BaseDirectory, "wwwroot");

    public static async Task<StaticDashboardServer> StartAsync()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore().UseUrls("http://127.0.0.1:0");
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        var files = new PhysicalFileProvider(WebRoot);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new StaticDashboardServer(app, new Uri(address + "/"));
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
