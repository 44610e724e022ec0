using System.Net;
using IotRealtime.Device.Simulator.Fleet;

namespace IotRealtime.Device.Simulator.Tests;

/// <summary>Which device mode a fleet run gets, and the options that go with raw mode and --hosts.</summary>
public sealed class FleetModeOptionsTests
{
    static FleetOptions Parse(params string[] args)
    {
        Assert.True(FleetOptions.TryParse(args, out var options, out var error), error);
        return options;
    }

    [Fact]
    public void Plain_mqtt_3_1_1_over_tcp_runs_raw_by_default() => Assert.True(Parse("--qos", "1").UsesRawMode);

    [Theory]
    [InlineData("--tls", "", "it has no TLS")]
    [InlineData("--protocol", "5", "it speaks MQTT 3.1.1 only")]
    [InlineData("--qos", "2", "it publishes at QoS 0 or 1 only")]
    [InlineData("--ws", "ws://127.0.0.1:8080/mqtt", "it speaks MQTT over TCP only, not WebSocket")]
    [InlineData("--host", "localhost", "it connects to IPv4 addresses only (no names)")]
    public void What_raw_mode_lacks_falls_back_to_mqttnet_and_is_refused_when_raw_is_asked_for(string name, string value, string gap)
    {
        string[] args = value.Length == 0 ? [name] : [name, value];
        var auto = Parse(args);
        Assert.False(auto.UsesRawMode);
        Assert.Equal(gap, auto.RawModeGap);

        Assert.False(FleetOptions.TryParse([.. args, "--mode", "raw"], out _, out var error));
        Assert.Contains($"--mode raw cannot run these options: {gap}", error, StringComparison.Ordinal);
        Assert.False(Parse([.. args, "--mode", "mqttnet"]).UsesRawMode);
    }

    [Fact]
    public void Hosts_assign_devices_by_index_and_let_a_raw_source_address_carry_ports_for_each()
    {
        var options = Parse("--hosts", "127.0.0.1:1883,127.0.0.5:1884", "--per-source", "50000");

        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.0.0.1"), 1883), options.TargetFor(4));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("127.0.0.5"), 1884), options.TargetFor(7));
        Assert.Equal(56_000, options.MaxPerSource);

        Assert.False(FleetOptions.TryParse(["--hosts", "127.0.0.1:1883,127.0.0.5:1884", "--per-source", "50000", "--mode", "mqttnet"], out _, out var error));
        Assert.Contains("--per-source must be between 1 and 28000", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("broker:1883")]
    [InlineData("127.0.0.1:0")]
    public void Hosts_take_ipv4_address_and_port_entries(string hosts)
    {
        Assert.False(FleetOptions.TryParse(["--hosts", hosts], out _, out var error));
        Assert.StartsWith("--hosts takes IPv4 address:port entries", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Hosts_do_not_go_with_websocket()
    {
        Assert.False(FleetOptions.TryParse(["--hosts", "127.0.0.1:1883", "--ws", "ws://127.0.0.1:8080/mqtt"], out _, out var error));
        Assert.Contains("--hosts spreads TCP connections; it does not go with --ws", error, StringComparison.Ordinal);
    }
}
