using IotRealtime.Broker.Tests.Infrastructure;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>Runs the paho-mqtt scripts in Interop/scripts with /usr/bin/python3 (Debian python3-paho-mqtt).</summary>
public static class PahoScripts
{
    public static ExternalProcess Start(string script, TestBroker broker, string transport, params string[] arguments)
    {
        var port = transport == "websockets" ? broker.HttpPort : broker.MqttPort;
        return ExternalProcess.Start(ExternalTools.PythonWithPaho,
        [
            "-u", ExternalTools.Script(script),
            "--host", "127.0.0.1", "--port", port.ToString(), "--transport", transport,
            "--id", "paho-" + Guid.NewGuid().ToString("N")[..8],
            .. arguments,
        ]);
    }

    /// <summary>A paho subscriber; returns once its SUBACK arrived, having asserted the granted QoS.</summary>
    public static async Task<ExternalProcess> SubscribeAsync(TestBroker broker, string transport, string topic, int qos, string version = "311", int count = 1)
    {
        var sub = Start("paho_sub.py", broker, transport, "--topic", topic, "--qos", qos.ToString(), "--version", version, "--count", count.ToString());
        try
        {
            var subAck = await sub.WaitForLineAsync(l => l.StartsWith("SUBACK ", StringComparison.Ordinal), Timeouts.Default, "SUBACK");
            Assert.Equal($"SUBACK {qos}", subAck);
            return sub;
        }
        catch
        {
            await sub.DisposeAsync();
            throw;
        }
    }

    /// <summary>Publishes one message with paho and waits until the broker acknowledged it.</summary>
    public static async Task PublishAsync(TestBroker broker, string transport, string topic, string message, int qos, string version = "311", bool retain = false)
    {
        string[] extra = retain ? ["--retain"] : [];
        await using var pub = Start("paho_pub.py", broker, transport, ["--topic", topic, "--message", message, "--qos", qos.ToString(), "--version", version, .. extra]);
        var exitCode = await pub.WaitForExitAsync(Timeouts.Default);
        Assert.True(exitCode == 0 && pub.Lines.Contains("PUBLISHED"), $"paho_pub.py exited with {exitCode}:\n{pub.Output}");
    }
}
