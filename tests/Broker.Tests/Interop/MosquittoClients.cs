using IotRealtime.Broker.Tests.Infrastructure;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>Starts the Eclipse Mosquitto command-line clients (Debian mosquitto-clients) against a test broker.</summary>
public static class MosquittoClients
{
    /// <summary>mosquitto_sub printing each message as a <see cref="MessageLine"/>, exiting after <paramref name="count"/> of them.</summary>
    public static ExternalProcess Sub(TestBroker broker, string topic, int qos, string version, int count = 1, params string[] extra) =>
        // stdbuf: mosquitto_sub's stdio is block-buffered into a pipe, which would hide the SUBACK debug line.
        ExternalProcess.Start(ExternalTools.Require("stdbuf", "coreutils"),
        [
            "-oL", ExternalTools.MosquittoSub,
            "-h", "127.0.0.1", "-p", broker.MqttPort.ToString(), "-V", version,
            "-i", "mosquitto-sub-" + Guid.NewGuid().ToString("N")[..8],
            "-t", topic, "-q", qos.ToString(), "-C", count.ToString(),
            "-W", "60", // never outlive a broken test
            "-d", "-F", "MSG %t %q %r %p",
            .. extra,
        ]);

    /// <summary>Waits until mosquitto_sub's debug output shows the SUBACK, so a publish after this is not missed.</summary>
    public static Task WaitForSubAckAsync(ExternalProcess sub) =>
        sub.WaitForLineAsync(l => l.Contains("received SUBACK", StringComparison.Ordinal), Timeouts.Default, "SUBACK");

    /// <summary>Runs mosquitto_pub to completion and asserts it exited 0.</summary>
    public static async Task PubAsync(TestBroker broker, string topic, string message, int qos, string version, params string[] extra)
    {
        await using var pub = ExternalProcess.Start(ExternalTools.MosquittoPub,
        [
            "-h", "127.0.0.1", "-p", broker.MqttPort.ToString(), "-V", version,
            "-i", "mosquitto-pub-" + Guid.NewGuid().ToString("N")[..8],
            "-t", topic, "-m", message, "-q", qos.ToString(), "-d",
            .. extra,
        ]);
        var exitCode = await pub.WaitForExitAsync(Timeouts.Default);
        Assert.True(exitCode == 0, $"mosquitto_pub exited with {exitCode}:\n{pub.Output}");
    }

    /// <summary>Waits for the next message mosquitto_sub (or a paho script) printed.</summary>
    public static async Task<MessageLine> WaitForMessageAsync(ExternalProcess subscriber) =>
        MessageLine.Parse(await subscriber.WaitForLineAsync(MessageLine.Is, Timeouts.Default, "a received message"));
}
