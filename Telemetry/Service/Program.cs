await Console.Error.WriteLineAsync("iotrealtime-telemetry: not built yet").ConfigureAwait(false);
return 1;
