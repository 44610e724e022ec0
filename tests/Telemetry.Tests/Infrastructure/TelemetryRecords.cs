using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Npgsql;

namespace IotRealtime.Telemetry.Tests.Infrastructure;

/// <summary>Kafka records shaped like the broker's KafkaForwarder output, and what they must become in PostgreSQL.</summary>
public static class TelemetryRecords
{
    public static readonly DateTimeOffset Epoch = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);

    /// <summary>A device publish: key = client id, headers as the forwarder writes them, timestamp = broker receive time.</summary>
    public static Message<byte[]?, byte[]?> Publish(string clientId, string payload, DateTimeOffset receivedAt, bool withClientIdHeader = true)
    {
        var headers = new Headers
        {
            { "mqtt.topic", Encoding.UTF8.GetBytes($"devices/{clientId}/telemetry") },
            { "mqtt.qos", "1"u8.ToArray() },
            { "mqtt.retain", "false"u8.ToArray() },
        };
        if (withClientIdHeader) headers.Add("mqtt.client_id", Encoding.UTF8.GetBytes(clientId));
        return new Message<byte[]?, byte[]?>
        {
            Key = withClientIdHeader ? Encoding.UTF8.GetBytes(clientId) : null,
            Value = Encoding.UTF8.GetBytes(payload),
            Headers = headers,
            Timestamp = new Timestamp(receivedAt),
        };
    }

    /// <summary>Record <paramref name="seq"/>: readings seq, env.temp and env.ok (a boolean); a string and an array that are skipped.</summary>
    public static (Message<byte[]?, byte[]?> Message, (long Ticks, string Device, string Metric, double Value)[] Readings) Numbered(int seq, int devices = 10)
    {
        var device = "dev-" + (seq % devices).ToString(CultureInfo.InvariantCulture);
        var time = Epoch.AddMilliseconds(seq * 10L);
        var temp = 20 + seq % 100 * 0.25;
        var payload = string.Create(CultureInfo.InvariantCulture, $$"""{"seq":{{seq}},"env":{"temp":{{temp}},"ok":{{(seq % 2 == 0 ? "true" : "false")}}},"fw":"1.2","tags":[1,2]}""");
        return (Publish(device, payload, time), [
            (time.UtcTicks, device, "seq", seq),
            (time.UtcTicks, device, "env.temp", temp),
            (time.UtcTicks, device, "env.ok", seq % 2 == 0 ? 1 : 0),
        ]);
    }

    public static async Task ProduceAsync(string bootstrapServers, string topic, IEnumerable<Message<byte[]?, byte[]?>> messages)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig { BootstrapServers = bootstrapServers, LingerMs = 5, Acks = Acks.All }).Build();
        var deliveries = messages.Select(m => producer.ProduceAsync(topic, m)).ToList();
        await Task.WhenAll(deliveries).WithTimeout(Timeouts.Default, "Kafka deliveries");
    }

    public static async Task<long> CountAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>0 while the database is down or the table does not exist yet.</summary>
    public static async Task<long> TryCountAsync(string connectionString, string sql)
    {
        try
        {
            return await CountAsync(connectionString, sql);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            return 0;
        }
    }

    public static async Task<List<(long Ticks, string Device, string Metric, double Value)>> ReadingsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT time, device, metric, value FROM telemetry_readings", connection);
        var rows = new List<(long, string, string, double)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) rows.Add((reader.GetFieldValue<DateTimeOffset>(0).UtcTicks, reader.GetString(1), reader.GetString(2), reader.GetDouble(3)));
        return rows;
    }

    public static IEnumerable<(long Ticks, string Device, string Metric, double Value)> Sorted(IEnumerable<(long Ticks, string Device, string Metric, double Value)> rows) =>
        rows.OrderBy(r => r.Ticks).ThenBy(r => r.Device, StringComparer.Ordinal).ThenBy(r => r.Metric, StringComparer.Ordinal).ThenBy(r => r.Value);

    /// <summary>Exactly once: the stored rows are the expected rows, none missing, none twice.</summary>
    public static async Task AssertExactlyAsync(string connectionString, IEnumerable<(long Ticks, string Device, string Metric, double Value)> expected)
    {
        var stored = await ReadingsAsync(connectionString);
        var want = Sorted(expected).ToList();
        Assert.Equal(want.Count, stored.Count);
        Assert.Equal(want, Sorted(stored));
    }

    public static async Task WaitForRowsAsync(string connectionString, long expected, TimeSpan timeout, string what)
    {
        long last = -1;
        var deadline = DateTime.UtcNow + timeout;
        while ((last = await TryCountAsync(connectionString, "SELECT count(*) FROM telemetry_readings")) < expected)
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"Timed out waiting for {what}: {last} of {expected} readings stored.");
            await Task.Delay(50);
        }
    }
}
