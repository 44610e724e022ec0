using IotRealtime.Broker.Engine;
using Microsoft.Extensions.Hosting;

namespace IotRealtime.Broker.Host.Operations;

/// <summary>
/// Graceful shutdown: before any hosted service (Kestrel included) stops, drain the engine over
/// <see cref="AdminOptions.ShutdownDrainSeconds"/> so clients reconnect elsewhere spread out. The engine is disposed
/// afterwards with the container, which is where durable state is flushed.
/// </summary>
internal sealed class ShutdownDrainService(MqttBroker broker, AdminOptions options) : IHostedLifecycleService
{
    public Task StoppingAsync(CancellationToken cancellationToken) =>
        broker.DrainAsync(TimeSpan.FromSeconds(options.ShutdownDrainSeconds), serverReference: null, cancellationToken);

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
