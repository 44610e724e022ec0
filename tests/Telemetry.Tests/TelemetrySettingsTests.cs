using IotRealtime.Telemetry.Configuration;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Telemetry.Tests;

public sealed class TelemetrySettingsTests
{
    static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Defaults_apply_and_comma_separated_lists_bind()
    {
        var settings = TelemetrySettings.Load(Config(
            ("Telemetry:Kafka:BootstrapServers", "localhost:9092"),
            ("Telemetry:Kafka:Topics", "mqtt, telemetry"),
            ("Telemetry:Postgres:ConnectionString", "Host=localhost;Database=t")));
        Assert.Equal(["mqtt", "telemetry"], settings.Kafka.Topics);
        Assert.Equal("iotrealtime-telemetry", settings.Kafka.GroupId);
        Assert.Equal(["postgres"], settings.Sinks);
        Assert.Equal(30, settings.Postgres.RetentionDays);
        Assert.Equal(2, settings.Postgres.PartitionsAhead);
        Assert.Equal(50_000, settings.BatchMaxReadings);
        Assert.Equal(200, settings.BatchMaxDelayMs);
        Assert.Equal(8081, settings.Http.Port);
    }

    [Fact]
    public void Every_problem_is_reported_by_key()
    {
        var e = Assert.Throws<TelemetryConfigurationException>(() => TelemetrySettings.Load(Config(
            ("Telemetry:Kafka:Topics:0", "bad topic"),
            ("Telemetry:Sinks:0", "postgres"),
            ("Telemetry:Sinks:1", "influxdb"),
            ("Telemetry:Sinks:2", "mongo"),
            ("Telemetry:Influx:Version", "3"),
            ("Telemetry:BatchMaxReadings", "lots"),
            ("Telemetry:Postgres:RetentionDays", "0"),
            ("Telemetry:Postgres:Retention", "5"))));
        string[] expected =
        [
            "Telemetry:Kafka:BootstrapServers", "Telemetry:Kafka:Topics: 'bad topic'", "Telemetry:Sinks: 'mongo'",
            "Telemetry:Postgres:ConnectionString", "Telemetry:Postgres:RetentionDays", "Telemetry:Postgres:Retention is not a known setting",
            "Telemetry:Influx:Url", "Telemetry:Influx:Version", "Telemetry:BatchMaxReadings: 'lots'",
        ];
        foreach (var key in expected) Assert.Contains(e.Errors, error => error.StartsWith(key, StringComparison.Ordinal));
    }
}
