using System.Net;
using System.Net.Http.Json;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Operations;

public sealed class DrainTests
{
    [Fact]
    public async Task Drain_disconnects_everyone_with_server_shutting_down_refuses_new_connects_and_fails_readiness()
    {
        await using var broker = await TestBroker.StartAsync();
        var clients = new List<RawMqttClient>();
        for (var i = 0; i < 4; i++)
        {
            var (client, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, $"drain-{i}", configure: c => { c.CleanSession = false; c.SessionExpiryInterval = 600; });
            clients.Add(client);
        }
        using var http = OperationsHttp.Create(broker);
        using (var ready = await http.GetAsync("readyz")) Assert.Equal(HttpStatusCode.OK, ready.StatusCode);

        using var started = await http.PostAsJsonAsync("api/drain", new { windowSeconds = 1.5 });
        var plan = await started.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();

        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        Assert.Equal(1.5, plan.GetProperty("windowSeconds").GetDouble());
        Assert.Equal(4, plan.GetProperty("connectionsAtStart").GetInt32());
        using (var notReady = await http.GetAsync("readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
            Assert.Contains("draining", await notReady.Content.ReadAsStringAsync());
        }
        var (refused, connAck) = await RawMqttClient.ConnectAsync(broker.MqttPort, "drain-late");
        await using (refused) Assert.Equal(MqttConnectReasonCode.ServerBusy, connAck.ReasonCode);
        var (refused311, connAck311) = await RawMqttClient.ConnectAsync(broker.MqttPort, "drain-late-311", MqttProtocolVersion.V311);
        await using (refused311) Assert.Equal(MqttConnectReturnCode.ConnectionRefusedServerUnavailable, connAck311.ReturnCode);

        foreach (var client in clients)
        {
            var disconnect = await client.ExpectClosedAsync(Timeouts.Default);
            Assert.Equal(MqttDisconnectReasonCode.ServerShuttingDown, disconnect?.ReasonCode);
            await client.DisposeAsync();
        }
        await Wait.UntilAsync(() => broker.Host.Broker.GetDrainStatus() is { Completed: true }, Timeouts.Default, "the drain to complete");
        var status = await http.GetJsonAsync("api/drain");
        Assert.Equal("completed", status.GetProperty("state").GetString());
        Assert.Equal(0, status.GetProperty("remaining").GetInt32());
        // persistent sessions stay for the clients' return (to this node after a restart, with a durable store)
        Assert.Equal(4, broker.Host.Broker.GetSessions().Count(s => s.ClientId.StartsWith("drain-", StringComparison.Ordinal) && !s.Online));
        using var again = await http.PostAsync("api/drain", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task Drain_with_a_server_reference_sends_server_moved()
    {
        await using var server = EngineServer.Start();
        var (client, _) = await RawMqttClient.ConnectAsync(server.Port, "moved-1");
        await using var _c = client;

        var drain = server.Broker.DrainAsync(TimeSpan.FromMilliseconds(200), "broker-2.example:1883");
        var disconnect = await client.ExpectClosedAsync(Timeouts.Default);
        var (late, connAck) = await RawMqttClient.ConnectAsync(server.Port, "moved-2");
        await using var _l = late;
        await drain.WaitAsync(Timeouts.Default);

        Assert.Equal(MqttDisconnectReasonCode.ServerMoved, disconnect?.ReasonCode);
        Assert.Equal("broker-2.example:1883", disconnect?.ServerReference);
        Assert.Equal(MqttConnectReasonCode.ServerMoved, connAck.ReasonCode);
        Assert.Equal("broker-2.example:1883", connAck.ServerReference);
        Assert.Equal(1, server.Broker.Metrics.ConnectsRefused(IotRealtime.Broker.Engine.Operations.ConnectRefusal.Draining));
    }

    [Fact]
    public async Task Host_disposal_drains_connected_clients_first()
    {
        var broker = await TestBroker.StartAsync(new Dictionary<string, string?> { ["Admin:ShutdownDrainSeconds"] = "1" });
        var (client, _) = await RawMqttClient.ConnectAsync(broker.MqttPort, "shutdown-1");
        await using var _c = client;

        var disposing = broker.DisposeAsync().AsTask();
        var disconnect = await client.ExpectClosedAsync(Timeouts.Default);
        await disposing.WaitAsync(Timeouts.Default);

        Assert.Equal(MqttDisconnectReasonCode.ServerShuttingDown, disconnect?.ReasonCode);
    }
}
