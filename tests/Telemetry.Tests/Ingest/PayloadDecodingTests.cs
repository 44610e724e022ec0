using System.Text;
using Confluent.Kafka;
using IotRealtime.Telemetry.Ingest;
using IotRealtime.Telemetry.Sinks;
using IotRealtime.Telemetry.Tests.Infrastructure;

namespace IotRealtime.Telemetry.Tests.Ingest;

public sealed class PayloadDecodingTests
{
    static readonly DateTimeOffset At = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    static (List<Reading> Readings, ParkedPayload? Parked) Decode(Message<byte[]?, byte[]?> message)
    {
        var record = new ConsumeResult<byte[]?, byte[]?> { Message = message, TopicPartitionOffset = new TopicPartitionOffset("mqtt", 4, 17) };
        var readings = new List<Reading>();
        var parked = new RecordDecoder(TimeProvider.System).Decode(record, readings);
        return (readings, parked);
    }

    static (List<Reading> Readings, ParkedPayload? Parked) Decode(string payload) => Decode(TelemetryRecords.Publish("d1", payload, At));

    [Fact]
    public void Numeric_leaves_become_readings_named_by_their_path()
    {
        var (readings, parked) = Decode("""{"temp":21.5,"pos":{"lat":1,"lon":-2.25e1,"fix":{"ok":true}},"on":false,"fw":"1.2","list":[1,{"x":2}],"none":null,"big":12345678901234}""");
        Assert.Null(parked);
        Assert.Equal(
            [("temp", 21.5), ("pos.lat", 1), ("pos.lon", -22.5), ("pos.fix.ok", 1), ("on", 0), ("big", 12345678901234)],
            readings.Select(r => (r.Metric, r.Value)));
        Assert.All(readings, r => Assert.Equal(("d1", At), (r.Device, r.Time)));
    }

    [Fact]
    public void Escaped_keys_are_unescaped()
    {
        var (readings, _) = Decode("""{"t\u00e9mp":1,"a\"b":2}""");
        Assert.Equal(["témp", "a\"b"], readings.Select(r => r.Metric));
    }

    [Theory]
    [InlineData("", "empty payload")]
    [InlineData("hello", "not valid JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("42", "not a JSON object")]
    [InlineData("""{"fw":"1.2","tags":[1]}""", "no numeric field")]
    [InlineData("""{"temp":21.5""", "not valid JSON")]
    [InlineData("""{"temp":21.5}{"temp":1}""", "not valid JSON")]
    public void Payloads_without_readings_are_parked_with_a_reason(string payload, string reason)
    {
        var (readings, parked) = Decode(payload);
        Assert.Empty(readings);
        Assert.NotNull(parked);
        Assert.StartsWith(reason, parked.Reason, StringComparison.Ordinal);
        Assert.Equal(("mqtt", 4, 17L, "d1", "devices/d1/telemetry"), (parked.Topic, parked.Partition, parked.Offset, parked.Device, parked.MqttTopic));
        Assert.Equal(Encoding.UTF8.GetBytes(payload), parked.Payload);
    }

    [Fact]
    public void The_device_is_the_client_id_header_else_the_topic_second_level_else_the_key()
    {
        Assert.Equal("d1", Decode(TelemetryRecords.Publish("d1", """{"v":1}""", At)).Readings.Single().Device);
        Assert.Equal("d2", Decode(TelemetryRecords.Publish("d2", """{"v":1}""", At, withClientIdHeader: false)).Readings.Single().Device);
        var keyOnly = new Message<byte[]?, byte[]?> { Key = "k9"u8.ToArray(), Value = """{"v":1}"""u8.ToArray(), Timestamp = new Timestamp(At) };
        Assert.Equal("k9", Decode(keyOnly).Readings.Single().Device);
        var nothing = new Message<byte[]?, byte[]?> { Value = """{"v":1}"""u8.ToArray(), Timestamp = new Timestamp(At), Headers = [new Header("mqtt.topic", "flat"u8.ToArray())] };
        Assert.StartsWith("no device", Decode(nothing).Parked!.Reason, StringComparison.Ordinal);
    }
}
