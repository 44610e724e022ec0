using System.Text;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>A message as an MQTTnet test client received it.</summary>
public sealed record ReceivedMessage(string Topic, string Payload, MqttQualityOfServiceLevel QoS, bool Retain);

/// <summary>How a test client reaches the broker.</summary>
public enum MqttTransport
{
    Tcp,
    WebSocket,
}

/// <summary>An MQTTnet client connected to a <see cref="TestBroker"/> that records every message it receives.</summary>
public sealed class MqttTestClient : IAsyncDisposable
{
    private readonly List<ReceivedMessage> _received = [];
    private readonly Lock _gate = new();

    private MqttTestClient(IMqttClient client)
    {
        Client = client;
        // Attached before connecting, so retained messages sent right after SUBACK are never missed.
        client.ApplicationMessageReceivedAsync += e => OnMessage(e.ApplicationMessage);
    }

    public IMqttClient Client { get; }

    public MqttClientConnectResult ConnectResult { get; private set; } = null!;

    public IReadOnlyList<ReceivedMessage> Received
    {
        get
        {
            lock (_gate) return [.. _received];
        }
    }

    /// <summary>Connects over TCP or WebSocket with MQTT 3.1.1 or 5.0; <paramref name="configure"/> may add will, credentials, etc.</summary>
    public static async Task<MqttTestClient> ConnectAsync(
        TestBroker broker,
        MqttProtocolVersion version = MqttProtocolVersion.V500,
        MqttTransport transport = MqttTransport.Tcp,
        string? clientId = null,
        Action<MqttClientOptionsBuilder>? configure = null)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithProtocolVersion(version)
            .WithClientId(clientId ?? "mqttnet-" + Guid.NewGuid().ToString("N")[..12])
            .WithCleanSession()
            .WithTimeout(TimeSpan.FromSeconds(10));
        builder = transport == MqttTransport.Tcp
            ? builder.WithTcpServer("127.0.0.1", broker.MqttPort)
            : builder.WithWebSocketServer(o => o.WithUri(broker.WebSocketUri.ToString()));
        configure?.Invoke(builder);

        var result = new MqttTestClient(new MqttClientFactory().CreateMqttClient());
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            result.ConnectResult = await result.Client.ConnectAsync(builder.Build(), timeout.Token);
            return result;
        }
        catch
        {
            result.Client.Dispose();
            throw;
        }
    }

    public async Task<MqttClientSubscribeResult> SubscribeAsync(string topicFilter, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce)
    {
        var options = new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topicFilter, qos).Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await Client.SubscribeAsync(options, timeout.Token);
    }

    public async Task<MqttClientPublishResult> PublishAsync(string topic, string payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce, bool retain = false)
    {
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(Encoding.UTF8.GetBytes(payload))
            .WithQualityOfServiceLevel(qos)
            .WithRetainFlag(retain)
            .Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await Client.PublishAsync(message, timeout.Token);
    }

    /// <summary>Waits for a received message matching <paramref name="match"/> and returns it.</summary>
    public async Task<ReceivedMessage> WaitForMessageAsync(Func<ReceivedMessage, bool> match, TimeSpan timeout, string what = "a matching message")
    {
        ReceivedMessage? found = null;
        await Wait.UntilAsync(() => (found = Received.FirstOrDefault(match)) is not null, timeout, what + " (received so far: " + Describe() + ")");
        return found!;
    }

    public Task<ReceivedMessage> WaitForMessageAsync(string topic, TimeSpan timeout) =>
        WaitForMessageAsync(m => m.Topic == topic, timeout, $"a message on '{topic}'");

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (Client.IsConnected)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await Client.DisconnectAsync(new MqttClientDisconnectOptions(), timeout.Token);
            }
        }
        catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException)
        {
            // The broker may already have closed the connection; disposal must not mask the test's own result.
        }
        Client.Dispose();
    }

    private string Describe()
    {
        var received = Received;
        return received.Count == 0 ? "none" : string.Join(", ", received.Select(m => $"{m.Topic}='{m.Payload}'"));
    }

    private Task OnMessage(MqttApplicationMessage message)
    {
        var received = new ReceivedMessage(message.Topic, message.ConvertPayloadToString() ?? "", message.QualityOfServiceLevel, message.Retain);
        lock (_gate) _received.Add(received);
        return Task.CompletedTask;
    }
}
