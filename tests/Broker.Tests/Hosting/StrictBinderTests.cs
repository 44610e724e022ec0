using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Kafka;
using IotRealtime.Hosting.Configuration;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Broker.Tests.Hosting;

/// <summary>The one binder the broker, bridges and telemetry hosts share (Broker/Hosting/Configuration/StrictBinder.cs).</summary>
public sealed class StrictBinderTests
{
    static IConfiguration Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    public sealed class Sample
    {
        public int Count { get; set; } = 1;
        public uint Expiry { get; set; } = 7;
        public bool? Flag { get; set; }
        public KafkaForwardMode Mode { get; set; }
        public List<string> Names { get; set; } = ["default"];
        public Inner Nested { get; set; } = new();
        public List<KafkaRule> Rules { get; set; } = [];
        public string Computed => "read-only, never bound";
    }

    public sealed class Inner
    {
        public string Text { get; set; } = "x";
        public Inner? Deeper { get; set; }
    }

    [Fact]
    public void Flat_nested_list_and_uint_values_bind()
    {
        var errors = new List<string>();
        var sample = StrictBinder.Bind<Sample>(Config(
            ("S:count", "5"), ("S:Expiry", "4294967295"), ("S:Flag", "true"), ("S:Mode", "durable"),
            ("S:Names:0", "a"), ("S:Names:1", "b"),
            ("S:Nested:Text", "hello"), ("S:Nested:Deeper:Text", "deep"),
            ("S:Rules:0:Filter", "a/#"), ("S:Rules:0:Topic", "alpha"), ("S:Rules:0:Key", "Topic"),
            ("S:Rules:1:Topic", "beta")), "S", errors);

        Assert.Empty(errors);
        Assert.Equal(5, sample.Count);
        Assert.Equal(uint.MaxValue, sample.Expiry);
        Assert.True(sample.Flag);
        Assert.Equal(KafkaForwardMode.Durable, sample.Mode);
        Assert.Equal(["a", "b"], sample.Names);
        Assert.Equal("hello", sample.Nested.Text);
        Assert.Equal("deep", sample.Nested.Deeper!.Text);
        Assert.Equal(2, sample.Rules.Count);
        Assert.Equal(("a/#", "alpha", KafkaKeySource.Topic), (sample.Rules[0].Filter, sample.Rules[0].Topic, sample.Rules[0].Key));
        Assert.Equal(("#", "beta", KafkaForwardMode.Async), (sample.Rules[1].Filter, sample.Rules[1].Topic, sample.Rules[1].Mode));
    }

    [Fact]
    public void Absent_keys_keep_their_defaults()
    {
        var errors = new List<string>();
        var sample = StrictBinder.Bind<Sample>(Config(("Other:Count", "9")), "S", errors);

        Assert.Empty(errors);
        Assert.Equal(1, sample.Count);
        Assert.Equal(7u, sample.Expiry);
        Assert.Equal(["default"], sample.Names);
        Assert.Equal("x", sample.Nested.Text);
    }

    [Fact]
    public void A_list_of_text_may_be_one_comma_separated_value()
    {
        var errors = new List<string>();
        var sample = StrictBinder.Bind<Sample>(Config(("S:Names", " mqtt, telemetry ,")), "S", errors);

        Assert.Empty(errors);
        Assert.Equal(["mqtt", "telemetry"], sample.Names);
    }

    [Fact]
    public void Unknown_keys_are_errors_naming_the_full_key_at_every_depth()
    {
        var errors = new List<string>();
        StrictBinder.Bind<Sample>(Config(
            ("S:Cuont", "1"), ("S:Nested:Txet", "a"), ("S:Nested:Deeper:Nope", "b"), ("S:Rules:1:Mdoe", "Durable"), ("S:Computed", "x")), "S", errors);

        Assert.Equal(5, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("S:Cuont is not a known setting; S has Count, Expiry, Flag, Mode, Names, Nested, Rules.", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("S:Nested:Txet is not a known setting; S:Nested has Deeper, Text.", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("S:Nested:Deeper:Nope is not a known setting", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("S:Rules:1:Mdoe is not a known setting; S:Rules:1 has Filter, Key, Mode, Topic.", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("S:Computed is not a known setting", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_values_are_errors_naming_the_key_and_what_is_accepted_and_do_not_hide_each_other()
    {
        var errors = new List<string>();
        var sample = StrictBinder.Bind<Sample>(Config(
            ("S:Count", "lots"), ("S:Expiry", "-1"), ("S:Flag", "maybe"), ("S:Mode", "Sync"), ("S:Rules:0:Key", "Nope"), ("S:Nested:Text", "fine")), "S", errors);

        Assert.Equal(
        [
            "S:Count: 'lots' is not valid; expected a whole number.",
            "S:Expiry: '-1' is not valid; expected a whole number.",
            "S:Flag: 'maybe' is not valid; expected true or false.",
            "S:Mode: 'Sync' is not valid; expected one of Async, Durable.",
            "S:Rules:0:Key: 'Nope' is not valid; expected one of ClientId, Topic.",
        ], errors.Order(StringComparer.Ordinal));
        Assert.Equal("fine", sample.Nested.Text);
        Assert.Equal(1, sample.Count);
    }

    [Fact]
    public void A_value_where_a_section_belongs_and_a_section_where_a_value_belongs_are_errors()
    {
        var errors = new List<string>();
        StrictBinder.Bind<Sample>(Config(("S:Nested", "fast"), ("S:Count:0", "1"), ("S:Rules", "alpha")), "S", errors);

        Assert.Contains(errors, e => e.StartsWith("S:Nested: 'fast' is not valid; S:Nested is a section", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("S:Count takes one value, not a section (found S:Count:0)", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("S:Rules: 'alpha' is not valid; expected a list in indexed keys", StringComparison.Ordinal));
    }

    [Fact]
    public void The_broker_s_uint_setting_binds_through_the_host_binder()
    {
        var errors = new List<string>();
        var options = StrictBinder.Bind<BrokerOptions>(Config(("Broker:MaxSessionExpiryInterval", "3600")), "Broker", errors);

        Assert.Empty(errors);
        Assert.Equal(3600u, options.MaxSessionExpiryInterval);
    }
}
