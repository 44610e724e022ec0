using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Operations;
using IotRealtime.Broker.Host;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Bridges.Tests.Infrastructure;

/// <summary>
/// A <see cref="BrokerHost"/> with the bridges in-process on 127.0.0.1 and ephemeral ports, for one test: HTTP (SSE,
/// /ws, dashboard) at <see cref="BaseUri"/>, MQTT at <see cref="MqttPort"/>. What the host logs at Error or above (an
/// engine or endpoint exception it caught and carried on from) fails the test when the host is disposed.
/// </summary>
public sealed class TestBridges : IAsyncDisposable
{
    readonly List<IAsyncDisposable> _owned = [];

    readonly string _dataDirectory;

    readonly ErrorLog _errors;

    TestBridges(BrokerHost host, string dataDirectory, ErrorLog errors)
    {
        Host = host;
        _dataDirectory = dataDirectory;
        _errors = errors;
    }

    public BrokerHost Host { get; }

    public int MqttPort => Host.MqttPort;

    public int HttpPort => Host.HttpPort;

    public Uri BaseUri => new($"http://127.0.0.1:{Host.HttpPort}/");

    public Uri WebSocketUri => new($"ws://127.0.0.1:{Host.HttpPort}/ws");

    public FeedHub Feed => Host.Services.GetRequiredService<FeedHub>();

    public BridgeMetrics Metrics => Host.Services.GetRequiredService<BridgeMetrics>();

    /// <summary>Starts broker and bridges; <paramref name="settings"/> override the defaults (e.g. "Bridges:History:MessagesPerTopic" = "5").</summary>
    public static async Task<TestBridges> StartAsync(IReadOnlyDictionary<string, string?>? settings = null, CancellationToken ct = default)
    {
        var dataDirectory = Directory.CreateTempSubdirectory("iotrt-bridges-").FullName;
        var values = new Dictionary<string, string?>
        {
            ["Listeners:BindAddress"] = "127.0.0.1",
            ["Listeners:MqttPort"] = "0",
            ["Listeners:HttpPort"] = "0",
            ["Auth:AllowAnonymous"] = "true",
            ["Admin:ShutdownDrainSeconds"] = "0",
            ["Store:Durability"] = "None",
            ["Data:Directory"] = dataDirectory,
            ["Logging:LogLevel:Default"] = "Warning",
            // tests publish before they open streams and expect history to hold it (the product default records only
            // while browsers listen; HistoryRecordingTests cover that)
            ["Bridges:History:Record"] = "Always",
        };
        if (settings is not null)
        {
            foreach (var (key, value) in settings) values[key] = value;
        }
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var errors = new ErrorLog();
        try
        {
            return new TestBridges(await BrokerHost.StartAsync(configuration, errors, ct), dataDirectory, errors);
        }
        catch
        {
            Directory.Delete(dataDirectory, recursive: true);
            throw;
        }
    }

    /// <summary>An HttpClient for this host, disposed with it.</summary>
    public HttpClient CreateHttpClient()
    {
        var client = new HttpClient { BaseAddress = BaseUri, Timeout = Timeout.InfiniteTimeSpan };
        _owned.Add(new DisposableAdapter(client));
        return client;
    }

    /// <summary>Opens GET /sse with <paramref name="query"/> (e.g. "topic=a/%23&amp;from=earliest"); the reader is disposed with the host.</summary>
    public async Task<SseReader> OpenSseAsync(string query, string? lastEventId = null, HttpClient? client = null)
    {
        var reader = await SseReader.OpenAsync(client ?? CreateHttpClient(), "sse?" + query, lastEventId);
        _owned.Add(reader);
        return reader;
    }

    /// <summary>Connects a multiplexed WebSocket to /ws (optionally with <paramref name="token"/>); disposed with the host.</summary>
    public async Task<WsTestClient> ConnectWebSocketAsync(string? token = null, string? origin = null)
    {
        var uri = token is null ? WebSocketUri : new Uri(WebSocketUri + "?token=" + Uri.EscapeDataString(token));
        var client = await WsTestClient.ConnectAsync(uri, origin);
        _owned.Add(client);
        return client;
    }

    /// <summary>An MQTTnet client connected over TCP, disposed with the host.</summary>
    public async Task<IMqttClient> ConnectMqttAsync(string? clientId = null, string? username = null, string? password = null)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", MqttPort)
            .WithClientId(clientId ?? "test-" + Guid.NewGuid().ToString("N")[..10])
            .WithCleanSession()
            .WithTimeout(TimeSpan.FromSeconds(10));
        if (username is not null) builder = builder.WithCredentials(username, password);
        await client.ConnectAsync(builder.Build());
        _owned.Add(new DisposableAdapter(client));
        return client;
    }

    /// <summary>Publishes <paramref name="payload"/> at QoS 1 and waits for the broker's PUBACK, so it is in the feed when this returns.</summary>
    public static async Task PublishAsync(IMqttClient client, string topic, string payload, bool retain = false)
    {
        var result = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(payload))
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(retain).Build());
        if (!result.IsSuccess) throw new InvalidOperationException($"publish to {topic} failed: {result.ReasonCode}");
    }

    /// <summary>POST /api/token; returns the token, or throws with the status when refused.</summary>
    public async Task<string> GetTokenAsync(string username, string password)
    {
        using var response = await CreateHttpClient().PostAsJsonAsync("api/token", new { username, password });
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"token refused: {(int)response.StatusCode} {body}", null, response.StatusCode);
        return JsonDocument.Parse(body).RootElement.GetProperty("token").GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            try
            {
                await _owned[i].DisposeAsync();
            }
            catch (Exception e) when (e is ObjectDisposedException or IOException or OperationCanceledException or MQTTnet.Exceptions.MqttCommunicationException)
            {
            }
        }
        await Host.DisposeAsync();
        Directory.Delete(_dataDirectory, recursive: true);
        if (_errors.Entries.Count > 0)
        {
            throw new Xunit.Sdk.XunitException($"The host logged {_errors.Entries.Count} error(s):{Environment.NewLine}{string.Join(Environment.NewLine, _errors.Entries)}");
        }
    }

    sealed class DisposableAdapter(IDisposable inner) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            inner.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
