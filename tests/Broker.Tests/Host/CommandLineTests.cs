using IotRealtime.Broker.Host.Cli;

namespace IotRealtime.Broker.Tests.Host;

public class CommandLineTests
{
    [Fact]
    public void Short_switches_map_to_configuration_keys()
    {
        var configuration = CommandLine.BuildConfiguration(["--mqtt-port", "1884", "--http-port=8081", "--mqtts-port", "8884", "--data-dir", "/tmp/x", "--Broker:MaxKeepAlive=30"]);

        Assert.Equal("1884", configuration["Listeners:MqttPort"]);
        Assert.Equal("8081", configuration["Listeners:HttpPort"]);
        Assert.Equal("8884", configuration["Listeners:MqttsPort"]);
        Assert.Equal("/tmp/x", configuration["Data:Directory"]);
        Assert.Equal("30", configuration["Broker:MaxKeepAlive"]);
    }

    [Fact]
    public void Environment_variables_with_the_prefix_are_read_and_the_command_line_wins()
    {
        Environment.SetEnvironmentVariable("IOTRT_HostTests__Marker", "from-env");
        Environment.SetEnvironmentVariable("IOTRT_HostTests__Overridden", "from-env");
        try
        {
            var configuration = CommandLine.BuildConfiguration(["--HostTests:Overridden=from-args"]);

            Assert.Equal("from-env", configuration["HostTests:Marker"]);
            Assert.Equal("from-args", configuration["HostTests:Overridden"]);
        }
        finally
        {
            Environment.SetEnvironmentVariable("IOTRT_HostTests__Marker", null);
            Environment.SetEnvironmentVariable("IOTRT_HostTests__Overridden", null);
        }
    }
}
