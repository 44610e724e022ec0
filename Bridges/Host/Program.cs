await Console.Error.WriteLineAsync("iotrealtime-bridges: not built yet").ConfigureAwait(false);
return 1;
