using Microsoft.Extensions.Hosting;

namespace IotRealtime.Hosting.Web;

/// <summary>An embedded host stops when its owner disposes it, not on Ctrl+C sent to the embedding process.</summary>
sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
