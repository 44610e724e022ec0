return await IotRealtime.Bridges.Host.BridgesHost.RunAsync(args).ConfigureAwait(false);
