using System.Net;
using IotRealtime.Bridges.Tests.Infrastructure;
using IotRealtime.Broker.Host;
using IotRealtime.Broker.Host.Configuration;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Bridges.Tests.Configuration;

public sealed class BridgesWiringTests
{
    [Fact]
    public async Task Broker_host_reports_bad_bridges_settings_by_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Listeners:BindAddress"] = "127.0.0.1",
            ["Listeners:MqttPort"] = "0",
            ["Listeners:HttpPort"] = "0",
            ["Bridges:Sse:Overflow"] = "Bogus",
            ["Bridges:WebSocket:QueueLenght"] = "5",
        }).Build();
        var e = await Assert.ThrowsAsync<BrokerConfigurationException>(() => BrokerHost.StartAsync(configuration));
        Assert.Contains(e.Errors, m => m.StartsWith("Bridges:Sse:Overflow: 'Bogus' is not valid", StringComparison.Ordinal));
        Assert.Contains(e.Errors, m => m.StartsWith("Bridges:WebSocket:QueueLenght is not a known setting", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Stall_and_header_timeouts_are_validated_by_key()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Listeners:BindAddress"] = "127.0.0.1",
            ["Listeners:MqttPort"] = "0",
            ["Listeners:HttpPort"] = "0",
            ["Listeners:RequestHeadersTimeoutSeconds"] = "0",
            ["Listeners:KeepAliveTimeoutSeconds"] = "-1",
            ["Bridges:Sse:StallTimeoutSeconds"] = "0",
            ["Bridges:WebSocket:StallTimeoutSeconds"] = "3601",
        }).Build();
        var e = await Assert.ThrowsAsync<BrokerConfigurationException>(() => BrokerHost.StartAsync(configuration));
        Assert.Contains(e.Errors, m => m.StartsWith("Listeners:RequestHeadersTimeoutSeconds must be 1..3600 (was 0)", StringComparison.Ordinal));
        Assert.Contains(e.Errors, m => m.StartsWith("Listeners:KeepAliveTimeoutSeconds must be 1..86400 (was -1)", StringComparison.Ordinal));
        Assert.Contains(e.Errors, m => m.StartsWith("Bridges:Sse:StallTimeoutSeconds must be 1..3600 (was 0)", StringComparison.Ordinal));
        Assert.Contains(e.Errors, m => m.StartsWith("Bridges:WebSocket:StallTimeoutSeconds must be 1..3600 (was 3601)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_js_client_library_is_served_as_a_module()
    {
        await using var bridges = await TestBridges.StartAsync();
        using var response = await bridges.CreateHttpClient().GetAsync("js/iotrealtime.js");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("export class IotRealtimeClient", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bridges_can_be_turned_off()
    {
        await using var bridges = await TestBridges.StartAsync(new Dictionary<string, string?> { ["Bridges:Enabled"] = "false" });
        using var response = await bridges.CreateHttpClient().GetAsync("sse?topic=a");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        using var mqttStillThere = await bridges.CreateHttpClient().GetAsync("healthz");
        Assert.Equal(HttpStatusCode.OK, mqttStillThere.StatusCode);
    }
}
