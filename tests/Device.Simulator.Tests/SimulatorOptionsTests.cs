namespace IotRealtime.Device.Simulator.Tests;

public sealed class SimulatorOptionsTests
{
    [Fact]
    public void Fanin_options_are_parsed()
    {
        Assert.True(SimulatorOptions.TryParse(
            ["fanin", "--port", "1884", "--publishers", "7", "--qos", "2", "--payload", "64", "--messages", "500",
             "--inflight", "20", "--duration", "3", "--subscriber-session", "persistent", "--json", "out.json"],
            out var o, out var error), error);

        Assert.Equal(("fanin", 1884, 7, 2, 64, 500, 20, 3, true, "out.json"),
            (o.Scenario, o.Port, o.Publishers, o.Qos, o.PayloadBytes, o.Messages, o.Inflight, o.DurationSeconds, o.PersistentSubscriber, o.JsonPath));
    }

    [Theory]
    [InlineData("--publishers", "0")]
    [InlineData("--qos", "3")]
    [InlineData("--payload", "19")]
    [InlineData("--messages", "0")]
    [InlineData("--inflight", "0")]
    [InlineData("--inflight", "70000")]
    [InlineData("--duration", "0")]
    [InlineData("--stall-timeout", "0")]
    [InlineData("--subscriber-session", "durable")]
    [InlineData("--port", "70000")]
    [InlineData("--host", "broker.local")]
    [InlineData("--connections", "0")]
    [InlineData("--per-source", "30000")]
    [InlineData("--source-base", "::1")]
    [InlineData("--client-id-pattern", "fixed")]
    [InlineData("--messages", "lots")]
    public void A_bad_value_is_refused_with_an_error_naming_the_option(string option, string value)
    {
        Assert.False(SimulatorOptions.TryParse(["fanin", option, value], out _, out var error));
        Assert.Contains(option, error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_scenario_is_refused_with_the_known_ones()
    {
        Assert.False(SimulatorOptions.TryParse(["fanpout"], out _, out var error));
        Assert.Contains("fanpout", error, StringComparison.Ordinal);
        Assert.Contains("fanin", error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_option_and_a_missing_value_are_named()
    {
        Assert.False(SimulatorOptions.TryParse(["fanin", "--speed", "9"], out _, out var unknown));
        Assert.Contains("--speed", unknown, StringComparison.Ordinal);
        Assert.False(SimulatorOptions.TryParse(["fanin", "--qos"], out _, out var missing));
        Assert.Contains("--qos", missing, StringComparison.Ordinal);
    }

    [Fact]
    public void Source_addresses_running_past_254_are_refused()
    {
        Assert.False(SimulatorOptions.TryParse(["idle", "--source-base", "127.0.0.250", "--per-source", "100", "--connections", "1000"], out _, out var error));
        Assert.Contains("--source-base", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Ahead_and_the_soak_options_are_parsed()
    {
        Assert.True(SimulatorOptions.TryParse(["fanin", "--qos", "0", "--ahead", "1000"], out var fanin, out var error), error);
        Assert.Equal(1000, fanin.Ahead);

        Assert.True(SimulatorOptions.TryParse(
            ["soak", "--publishers", "4", "--rate", "200", "--inflight", "10", "--churn-rate", "20", "--client-kill-every", "5", "--duration", "9"],
            out var soak, out error), error);
        Assert.Equal(("soak", 4, 200, 10, 20, 5, 9), (soak.Scenario, soak.Publishers, soak.Rate, soak.Inflight, soak.ChurnRate, soak.ClientKillEverySeconds, soak.DurationSeconds));
    }

    [Theory]
    [InlineData("fanin", "--ahead", "-1")]
    [InlineData("fanin", "--ahead", "70000")]
    [InlineData("fanout", "--ahead", "10")]
    [InlineData("soak", "--churn-rate", "-1")]
    [InlineData("soak", "--client-kill-every", "-5")]
    [InlineData("fanin", "--churn-rate", "10")]
    [InlineData("fanin", "--client-kill-every", "10")]
    public void Ahead_and_the_soak_options_are_refused_out_of_range_or_scenario(string scenario, string option, string value)
    {
        Assert.False(SimulatorOptions.TryParse([scenario, option, value], out _, out var error));
        Assert.Contains(option, error, StringComparison.Ordinal);
    }
}
