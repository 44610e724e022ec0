using IotRealtime.Broker.Tests.Infrastructure;

namespace IotRealtime.Broker.Tests.Interop;

/// <summary>
/// The subscription refusal the Eclipse Paho interoperability suite relies on ("deny subscribe test/nosubscribe"),
/// seen from python3-paho-mqtt.
/// </summary>
public sealed class PahoAclInteropTests
{
    private static readonly Dictionary<string, string?> PahoSuiteAcl = new()
    {
        ["Auth:Acl:0"] = "deny subscribe test/nosubscribe",
        ["Auth:AclDefault"] = "allow",
    };

    [Fact]
    public async Task Paho_subscription_to_denied_filter_gets_suback_failure_0x80_in_mqtt311()
    {
        await using var broker = await TestBroker.StartAsync(PahoSuiteAcl);
        await using var sub = PahoScripts.Start("paho_sub.py", broker, "tcp", "--topic", "test/nosubscribe", "--qos", "2", "--version", "311");

        Assert.Equal("SUBACK 128", await sub.WaitForLineAsync(l => l.StartsWith("SUBACK ", StringComparison.Ordinal), Timeouts.Default, "SUBACK"));
    }

    [Theory]
    [InlineData("+/+", "311")]
    [InlineData("#", "5")]
    [InlineData("test/+", "5")]
    public async Task Wildcard_subscription_overlapping_a_denied_filter_is_granted_and_receives_other_topics(string filter, string version)
    {
        await using var broker = await TestBroker.StartAsync(PahoSuiteAcl);
        await using var sub = await PahoScripts.SubscribeAsync(broker, "tcp", filter, 2, version);

        await PahoScripts.PublishAsync(broker, "tcp", "test/allowed", "not denied", 2, version);

        Assert.Equal(new MessageLine("test/allowed", 2, false, "not denied"), await MosquittoClients.WaitForMessageAsync(sub));
    }
}
