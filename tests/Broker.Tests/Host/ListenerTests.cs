using System.Net.WebSockets;
using IotRealtime.Broker.Host;
using IotRealtime.Broker.Host.Auth;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Host;

public sealed class ListenerTests : IDisposable
{
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-host-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    Task<BrokerHost> Start(params (string, string?)[] settings) =>
        BrokerHost.StartAsync(HostTestConfig.Build(Path.Combine(_dir, "data"), settings));

    [Fact]
    public async Task Starts_on_ephemeral_ports_and_answers_healthz()
    {
        await using var host = await Start();

        Assert.True(host.MqttPort > 0);
        Assert.True(host.HttpPort > 0);
        Assert.NotEqual(host.MqttPort, host.HttpPort);
        Assert.Null(host.MqttsPort);
        Assert.True(Directory.Exists(Path.Combine(_dir, "data")));

        using var http = new HttpClient();
        var response = await http.GetAsync($"http://127.0.0.1:{host.HttpPort}/healthz");
        Assert.True(response.IsSuccessStatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Disabled_listener_is_not_opened()
    {
        await using var host = await Start(("Listeners:MqttPort", "-1"));
        Assert.Equal(-1, host.MqttPort);
        Assert.True(host.HttpPort > 0);
    }

    [Fact]
    public async Task WebSocket_endpoint_negotiates_the_mqtt_subprotocol()
    {
        await using var host = await Start();
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("mqtt");

        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{host.HttpPort}/mqtt"), CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(WebSocketState.Open, socket.State);
        Assert.Equal("mqtt", socket.SubProtocol);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Mqtt_client_connects_over_tcp_and_websocket(bool webSocket)
    {
        await using var host = await Start();
        using var client = new MqttClientFactory().CreateMqttClient();
        var options = new MqttClientOptionsBuilder().WithClientId("tcp-or-ws").WithProtocolVersion(MqttProtocolVersion.V500).WithTimeout(Timeout);
        options = webSocket
            ? options.WithWebSocketServer(o => o.WithUri($"ws://127.0.0.1:{host.HttpPort}/mqtt"))
            : options.WithTcpServer("127.0.0.1", host.MqttPort);

        var result = await client.ConnectAsync(options.Build()).WaitAsync(Timeout);

        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.Equal(1, host.Broker.ConnectedClients);
        await client.DisconnectAsync();
    }

    [Fact]
    public async Task Password_file_users_connect_and_others_are_refused()
    {
        var file = Path.Combine(_dir, "passwords");
        PasswordFile.SetPassword(file, "alice", PasswordHash.Create("wonderland"u8, iterations: 1000));
        await using var host = await Start(("Auth:PasswordFile", file));

        Assert.Equal(MqttClientConnectResultCode.Success, await Connect(host, "alice", "wonderland"));
        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, await Connect(host, "alice", "looking-glass"));
        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, await Connect(host, "mallory", "wonderland"));
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, await Connect(host, null, null));
    }

    [Fact]
    public async Task Acl_limits_devices_to_their_own_subtree()
    {
        await using var host = await Start(
            ("Auth:Acl:0", "allow publish devices/%c/#"),
            ("Auth:Acl:1", "allow subscribe devices/%c/commands/#"),
            ("Auth:Acl:2", "deny all #"));
        using var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithClientId("dev1").WithTcpServer("127.0.0.1", host.MqttPort)
            .WithProtocolVersion(MqttProtocolVersion.V500).WithTimeout(Timeout).Build()).WaitAsync(Timeout);

        var own = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("devices/dev1/temp").WithPayload("21")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build()).WaitAsync(Timeout);
        var other = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("devices/dev2/temp").WithPayload("21")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build()).WaitAsync(Timeout);
        var subscribe = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("devices/dev1/commands/#").WithTopicFilter("devices/+/commands/#").Build()).WaitAsync(Timeout);

        Assert.Equal(MqttClientPublishReasonCode.Success, own.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, other.ReasonCode);
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, subscribe.Items.ElementAt(0).ResultCode);
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, subscribe.Items.ElementAt(1).ResultCode);
    }

    static async Task<MqttClientConnectResultCode> Connect(BrokerHost host, string? username, string? password)
    {
        using var client = new MqttClientFactory().CreateMqttClient();
        var options = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", host.MqttPort)
            .WithProtocolVersion(MqttProtocolVersion.V500).WithTimeout(Timeout);
        if (username is not null) options = options.WithCredentials(username, password);
        // MQTTnet 5 returns a refused CONNACK as a result rather than throwing.
        var result = await client.ConnectAsync(options.Build()).WaitAsync(Timeout);
        if (result.ResultCode == MqttClientConnectResultCode.Success) await client.DisconnectAsync();
        return result.ResultCode;
    }
}
