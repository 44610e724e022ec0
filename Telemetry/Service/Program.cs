using IotRealtime.Telemetry;

return await TelemetryHost.RunAsync(args);
