using IotRealtime.Broker.Host;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>A <see cref="BrokerHost"/> started in-process on 127.0.0.1 with ephemeral ports, for one test.</summary>
public sealed class TestBroker : IAsyncDisposable
{
    private TestBroker(BrokerHost host) => Host = host;

    public BrokerHost Host { get; }

    public int MqttPort => Host.MqttPort;

    public int HttpPort => Host.HttpPort;

    public Uri WebSocketUri => new($"ws://127.0.0.1:{Host.HttpPort}/mqtt");

    /// <summary>Starts a broker; <paramref name="settings"/> override the defaults (e.g. "Broker:MaxKeepAlive" = "60").</summary>
    public static async Task<TestBroker> StartAsync(IReadOnlyDictionary<string, string?>? settings = null, CancellationToken ct = default)
    {
        var values = new Dictionary<string, string?>
        {
            ["Listeners:BindAddress"] = "127.0.0.1",
            ["Listeners:MqttPort"] = "0",
            ["Listeners:HttpPort"] = "0",
            ["Auth:AllowAnonymous"] = "true",
            // disposal drains all at once; a test that exercises the shutdown window sets its own
            ["Admin:ShutdownDrainSeconds"] = "0",
            // tests that exercise persistence ask for a store in their own temp directory
            ["Store:Durability"] = "None",
        };
        if (settings is not null)
        {
            foreach (var (key, value) in settings) values[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var host = await BrokerHost.StartAsync(configuration, ct);
        return new TestBroker(host);
    }

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}
