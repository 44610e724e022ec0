using IotRealtime.Broker.Host;
using IotRealtime.Broker.Host.Configuration;

namespace IotRealtime.Broker.Tests.Host;

public sealed class ConfigurationValidationTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    async Task<BrokerConfigurationException> StartFails(params (string, string?)[] settings) =>
        await Assert.ThrowsAsync<BrokerConfigurationException>(() => BrokerHost.StartAsync(HostTestConfig.Build(Path.Combine(_dir, "data"), settings)));

    [Theory]
    [InlineData("Listeners:MqttPort", "70000", "Listeners:MqttPort")]
    [InlineData("Listeners:HttpPort", "-2", "Listeners:HttpPort")]
    [InlineData("Listeners:MqttPort", "abc", "Listeners:MqttPort")]
    [InlineData("Listeners:BindAddress", "not-an-ip", "Listeners:BindAddress")]
    [InlineData("Listeners:MqttPrt", "1", "MqttPrt")]
    [InlineData("Broker:ReceiveMaximum", "0", "Broker:ReceiveMaximum")]
    [InlineData("Broker:BackpressureTimeoutSeconds", "0", "Broker:BackpressureTimeoutSeconds")]
    [InlineData("Tls:CertificatePath", "/nonexistent/server.pem", "Tls:CertificatePath")]
    [InlineData("Tls:ClientCertificateMode", "Require", "Tls:ClientCertificateMode")]
    [InlineData("Tls:ClientCertificateMode", "Sometimes", "Tls")]
    [InlineData("Auth:PasswordFile", "/nonexistent/passwords", "Auth:PasswordFile")]
    [InlineData("Auth:AclFile", "/nonexistent/acl", "Auth:AclFile")]
    [InlineData("Auth:Acl:0", "allow publsh a/b", "Auth:Acl:0")]
    [InlineData("Auth:AclDefault", "maybe", "Auth")]
    public async Task Invalid_setting_is_reported_by_key(string key, string value, string expected)
    {
        var error = await StartFails((key, value));
        Assert.Contains(error.Errors, e => e.Contains(expected, StringComparison.Ordinal));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once_with_acl_line_numbers()
    {
        var acl = Path.Combine(_dir, "acl.conf");
        File.WriteAllLines(acl, ["# rules", "allow publish devices/%c/#", "allow pubish x", "deny all #", "allow all a/#/b"]);

        var error = await StartFails(
            ("Listeners:MqttPort", "65536"),
            ("Broker:MaximumQoS", "3"),
            ("Auth:AclFile", acl),
            ("Tls:CertificatePath", Path.Combine(_dir, "missing.pem")));

        Assert.Contains(error.Errors, e => e.StartsWith("Listeners:MqttPort", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.StartsWith("Broker:MaximumQoS", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.StartsWith("Tls:CertificatePath", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.StartsWith($"Auth:AclFile ({acl}) line 3: unknown action 'pubish'", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.StartsWith($"Auth:AclFile ({acl}) line 5:", StringComparison.Ordinal));
        Assert.Equal(5, error.Errors.Count);
        Assert.False(Directory.Exists(Path.Combine(_dir, "data")));
    }

    [Fact]
    public async Task Bad_values_and_unknown_keys_in_one_section_are_all_reported()
    {
        var error = await StartFails(("Listeners:HttpPort", "abc"), ("Listeners:MqttPort", "99999"), ("Listeners:Foo", "1"), ("Broker:QueueOverflowPolicy", "Explode"));

        Assert.Contains("Listeners:HttpPort: 'abc' is not valid; expected a whole number.", error.Errors);
        Assert.Contains(error.Errors, e => e.StartsWith("Listeners:MqttPort must be between", StringComparison.Ordinal));
        Assert.Contains(error.Errors, e => e.StartsWith("Listeners:Foo is not a known setting", StringComparison.Ordinal));
        Assert.Contains("Broker:QueueOverflowPolicy: 'Explode' is not valid; expected one of DropOldest, DropNew, Disconnect, Backpressure.", error.Errors);
    }

    [Fact]
    public async Task Same_port_for_two_listeners_is_rejected()
    {
        var error = await StartFails(("Listeners:MqttPort", "18999"), ("Listeners:HttpPort", "18999"));
        Assert.Contains(error.Errors, e => e.Contains("Listeners:MqttPort and Listeners:HttpPort", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Password_file_with_bad_lines_is_reported_with_line_numbers()
    {
        var file = Path.Combine(_dir, "passwords");
        File.WriteAllLines(file, ["alice:$pbkdf2-sha512$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA", "bob:hunter2"]);

        var error = await StartFails(("Auth:PasswordFile", file));

        Assert.Contains(error.Errors, e => e.StartsWith($"Auth:PasswordFile ({file}) line 2: user 'bob'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Run_prints_the_errors_and_exits_with_code_2()
    {
        var error = new StringWriter();
        var original = Console.Error;
        int code;
        try
        {
            Console.SetError(error);
            code = await BrokerHost.RunAsync(["--mqtt-port", "70000", "--http-port", "0", $"--data-dir={Path.Combine(_dir, "data")}", "--Broker:ReceiveMaximum=0"]);
        }
        finally
        {
            Console.SetError(original);
        }

        Assert.Equal(2, code);
        var text = error.ToString();
        Assert.Contains("Listeners:MqttPort", text);
        Assert.Contains("Broker:ReceiveMaximum", text);
        Assert.DoesNotContain("   at ", text);
    }
}
