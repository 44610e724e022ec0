using IotRealtime.Broker.Host;

return await BrokerHost.RunAsync(args);
