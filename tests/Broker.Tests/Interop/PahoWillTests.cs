using IotRealtime.Broker.Tests.Infrastructure;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>Will messages between paho clients, when a client's process dies without DISCONNECT.</summary>
public sealed class PahoWillTests
{
    [Theory]
    [InlineData("tcp", "311")]
    [InlineData("tcp", "5")]
    [InlineData("websockets", "311")]
    public async Task Will_is_delivered_to_paho_subscriber_when_paho_client_process_is_killed(string transport, string version)
    {
        await using var broker = await TestBroker.StartAsync();
        await using var sub = await PahoScripts.SubscribeAsync(broker, "tcp", "interop/will/#", 1, version);
        await using var doomed = PahoScripts.Start("paho_will.py", broker, transport,
            "--version", version, "--will-topic", "interop/will/device-7", "--will-message", "device-7 went away", "--will-qos", "1");
        await doomed.WaitForLineAsync(l => l == "CONNACK 0", Timeouts.Default, "CONNACK 0");

        doomed.Kill(); // SIGKILL by PID: no DISCONNECT, the broker sees the socket drop

        Assert.Equal(new MessageLine("interop/will/device-7", 1, false, "device-7 went away"), await MosquittoClients.WaitForMessageAsync(sub));
    }

    [Fact]
    public async Task Will_is_not_sent_after_clean_paho_disconnect()
    {
        await using var broker = await TestBroker.StartAsync();
        await using var sub = await PahoScripts.SubscribeAsync(broker, "tcp", "interop/will/#", 1);
        await using (var clean = PahoScripts.Start("paho_will.py", broker, "tcp",
            "--will-topic", "interop/will/clean", "--will-message", "must not arrive", "--disconnect"))
        {
            Assert.Equal(0, await clean.WaitForExitAsync(Timeouts.Default));
        }

        // Had the will been sent, it would have been routed before this marker (which connects only afterwards).
        await PahoScripts.PublishAsync(broker, "tcp", "interop/will/marker", "after clean disconnect", 1);

        Assert.Equal(new MessageLine("interop/will/marker", 1, false, "after clean disconnect"), await MosquittoClients.WaitForMessageAsync(sub));
    }
}
