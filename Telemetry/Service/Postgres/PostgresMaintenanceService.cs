using IotRealtime.Telemetry.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace IotRealtime.Telemetry.Postgres;

/// <summary>On a timer: creates daily partitions ahead and drops those older than the retention.</summary>
sealed class PostgresMaintenanceService(PostgresSink sink, TelemetrySettings settings, TimeProvider time, ILogger<PostgresMaintenanceService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(settings.Postgres.MaintenanceIntervalMinutes), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    var (created, dropped) = await sink.MaintainAsync(stoppingToken).ConfigureAwait(false);
                    if (created + dropped > 0) TelemetryLog.Maintenance(logger, created, dropped);
                }
                catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    TelemetryLog.MaintenanceFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
