using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Telemetry;
using IotRealtime.Telemetry.Configuration;
using IotRealtime.Telemetry.Postgres;
using IotRealtime.Telemetry.Sinks;
using IotRealtime.Testing;
using Microsoft.Extensions.Configuration;
using Npgsql;

// Usage: iotrealtime-telemetry-bench [--readings N] [--devices N] [--batch N] [--durable true|false] [--mode sink|e2e|both]
// Diagnostics: BENCH_LOG=Information shows the service's log; BENCH_PENDING=N overrides Telemetry:MaxPendingBatches.
var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
{
    ["readings"] = "2000000", ["devices"] = "1000", ["batch"] = "50000", ["durable"] = "true", ["mode"] = "both", ["timeout"] = "600",
};
for (var i = 0; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
int Int(string key) => int.TryParse(options[key], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0
    ? v : throw new ArgumentException($"--{key} must be a positive whole number (got '{options[key]}').");
var readings = Int("readings");
var devices = Int("devices");
var batchSize = Int("batch");
var timeout = TimeSpan.FromSeconds(Int("timeout"));
var durable = bool.Parse(options["durable"]);
var mode = options["mode"];
const int MetricsPerRecord = 5;
var records = readings / MetricsPerRecord;
readings = records * MetricsPerRecord;

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"telemetry ingest benchmark: {readings:N0} readings ({records:N0} records x {MetricsPerRecord} metrics, {devices:N0} devices), batch {batchSize:N0}, PostgreSQL fsync {(durable ? "on" : "off")}, {Environment.ProcessorCount} cores"));
await using var postgres = await PostgresServer.StartAsync(durable);
var start = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

string Payload(int seq) => string.Create(CultureInfo.InvariantCulture,
    $$"""{"temp":{{20 + seq % 50 * 0.1}},"hum":{{40 + seq % 30 * 0.5}},"bat":{{3.7 - seq % 10 * 0.01}},"rssi":{{-60 - seq % 20}},"seq":{{seq}}}""");
DateTimeOffset TimeOf(int seq) => start.AddMilliseconds(seq);
string DeviceOf(int seq) => "dev-" + (seq % devices).ToString(CultureInfo.InvariantCulture);

if (mode is "sink" or "both")
{
    // The sink alone: pre-built batches written back to back by one writer, as the pipeline's writer loop does.
    var connectionString = await postgres.CreateDatabaseAsync("bench_sink");
    await using var sink = new PostgresSink(new PostgresOptions { ConnectionString = connectionString }, "bench", TimeProvider.System);
    await sink.InitializeAsync(CancellationToken.None);
    var batches = new List<ReadingBatch>();
    string[] metrics = ["temp", "hum", "bat", "rssi", "seq"];
    for (var seq = 0; seq < records;)
    {
        var batch = new ReadingBatch();
        for (; seq < records && batch.Readings.Count < batchSize; seq++)
        {
            var device = DeviceOf(seq);
            var time = TimeOf(seq);
            for (var m = 0; m < MetricsPerRecord; m++) batch.Readings.Add(new Reading(time, device, metrics[m], seq + m));
        }
        batch.Offsets.Add(new SourceOffset("mqtt", 0, seq));
        batches.Add(batch);
    }
    var cpu = CpuMeter.Start(postgres);
    var watch = Stopwatch.StartNew();
    foreach (var batch in batches) await sink.WriteAsync(batch, CancellationToken.None);
    watch.Stop();
    Console.WriteLine(cpu.Stop(readings));
    var stored = await Count(connectionString, "SELECT count(*) FROM telemetry_readings");
    if (stored != readings) throw new InvalidOperationException($"sink: {stored} readings stored, expected {readings}.");
    Report("sink only (PostgresSink.WriteAsync)", readings, watch.Elapsed);
}

if (mode is "e2e" or "both")
{
    var connectionString = await postgres.CreateDatabaseAsync("bench_e2e");
    await using var kafka = KafkaMockCluster.Start();
    const string Topic = "mqtt";
    // The mock cluster keeps only about 30,000 such records per partition (older ones are deleted): spread them out.
    var partitions = Math.Clamp((records + 19_999) / 20_000, 4, 256);
    kafka.CreateTopic(Topic, partitions);
    var loading = Stopwatch.StartNew();
    var failed = 0;
    using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
    {
        BootstrapServers = kafka.BootstrapServers, LingerMs = 20, BatchSize = 1_000_000, // as the broker's forwarder (Kafka:BatchSizeBytes)
        QueueBufferingMaxMessages = 1_000_000, Acks = Acks.Leader,
    }).Build())
    {
        for (var seq = 0; seq < records; seq++)
        {
            var device = DeviceOf(seq);
            var message = new Message<byte[]?, byte[]?>
            {
                Key = Encoding.UTF8.GetBytes(device),
                Value = Encoding.UTF8.GetBytes(Payload(seq)),
                Timestamp = new Timestamp(TimeOf(seq)),
                Headers = new Headers
                {
                    { "mqtt.topic", Encoding.UTF8.GetBytes($"devices/{device}/telemetry") },
                    { "mqtt.qos", "1"u8.ToArray() },
                    { "mqtt.retain", "false"u8.ToArray() },
                    { "mqtt.client_id", Encoding.UTF8.GetBytes(device) },
                },
            };
            while (true)
            {
                try
                {
                    producer.Produce(Topic, message, report =>
                    {
                        if (report.Error.IsError && Interlocked.Increment(ref failed) == 1) Console.WriteLine($"produce failed: {report.Error.Reason}");
                    });
                    break;
                }
                catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    producer.Poll(TimeSpan.FromMilliseconds(100));
                }
            }
        }
        if (producer.Flush(timeout) > 0) throw new InvalidOperationException("Pre-loading Kafka did not finish in time.");
        if (failed > 0) throw new InvalidOperationException($"Pre-loading Kafka: {failed} records were not delivered.");
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pre-loaded {records:N0} records into the Kafka mock cluster in {loading.Elapsed.TotalSeconds:0.0} s"));
    using (var probe = new ConsumerBuilder<byte[], byte[]>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "bench-probe" }).Build())
    {
        long held = 0;
        for (var p = 0; p < partitions; p++)
        {
            var marks = probe.QueryWatermarkOffsets(new TopicPartition(Topic, p), TimeSpan.FromSeconds(10));
            if (marks.Low.Value != 0) throw new InvalidOperationException($"The mock cluster dropped the first {marks.Low.Value} records of partition {p}: use more partitions.");
            held += marks.High.Value;
        }
        if (held != records) throw new InvalidOperationException($"Kafka holds {held} records, expected {records}.");
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{partitions} partitions"));
    var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Telemetry:Kafka:BootstrapServers"] = kafka.BootstrapServers,
        ["Telemetry:Kafka:Topics:0"] = Topic,
        ["Telemetry:Postgres:ConnectionString"] = connectionString,
        ["Telemetry:Http:Port"] = "0",
        ["Telemetry:Http:BindAddress"] = "127.0.0.1",
        ["Telemetry:BatchMaxReadings"] = batchSize.ToString(CultureInfo.InvariantCulture),
        ["Telemetry:MaxPendingBatches"] = Environment.GetEnvironmentVariable("BENCH_PENDING") ?? "2",
        ["Logging:LogLevel:Default"] = Environment.GetEnvironmentVariable("BENCH_LOG") ?? "Warning",
    }).Build();
    var cpu = CpuMeter.Start(postgres);
    var watch = Stopwatch.StartNew();
    await using (var host = await TelemetryHost.StartAsync(configuration))
    {
        var deadline = Stopwatch.StartNew();
        while (host.Metrics.ReadingsWritten(TelemetrySettings.PostgresSink) < readings)
        {
            if (deadline.Elapsed > timeout) throw new TimeoutException($"end to end: {host.Metrics.ReadingsWritten(TelemetrySettings.PostgresSink):N0} of {readings:N0} readings after {timeout.TotalSeconds} s.");
            await Task.Delay(10);
        }
        watch.Stop();
        Console.WriteLine(cpu.Stop(readings));
        var (cumulative, sum) = host.Metrics.BatchWriteLatency.Snapshot();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"batches written: {cumulative[^1]:N0}, mean batch write {sum / Math.Max(1, cumulative[^1]) * 1000:0.0} ms, pauses (sink behind): {host.Metrics.Pauses}"));
    }
    var stored = await Count(connectionString, "SELECT count(*) FROM telemetry_readings");
    if (stored != readings) throw new InvalidOperationException($"end to end: {stored} readings stored, expected {readings}.");
    Report("end to end (Kafka mock cluster -> TelemetryHost -> PostgreSQL)", readings, watch.Elapsed);
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"load average at the end: {File.ReadAllText("/proc/loadavg").Trim()}"));

static void Report(string what, long readings, TimeSpan elapsed) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what}: {readings:N0} readings in {elapsed.TotalSeconds:0.00} s = {readings / elapsed.TotalSeconds:N0} readings/s"));

static async Task<long> Count(string connectionString, string sql)
{
    await using var connection = new NpgsqlConnection(connectionString);
    await connection.OpenAsync();
    await using var command = new NpgsqlCommand(sql, connection);
    return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
}

/// <summary>CPU seconds used by this process and by the PostgreSQL server's processes (postmaster and its children).</summary>
sealed class CpuMeter
{
    readonly PostgresServer _postgres;
    readonly TimeSpan _self;
    readonly double _server;

    CpuMeter(PostgresServer postgres)
    {
        _postgres = postgres;
        _self = Process.GetCurrentProcess().TotalProcessorTime;
        _server = ServerSeconds(postgres);
    }

    public static CpuMeter Start(PostgresServer postgres) => new(postgres);

    public string Stop(long readings)
    {
        var self = (Process.GetCurrentProcess().TotalProcessorTime - _self).TotalSeconds;
        var server = ServerSeconds(_postgres) - _server;
        return string.Create(CultureInfo.InvariantCulture,
            $"cpu: telemetry process {self:0.00} s, PostgreSQL {server:0.00} s = {readings / (self + server):N0} readings per CPU-second ({(self + server) / (readings / 1e6):0.00} CPU-s per million readings)");
    }

    /// <summary>utime + stime of the postmaster and its live children, from /proc.</summary>
    static double ServerSeconds(PostgresServer postgres)
    {
        if (postgres.ServerProcessId is not { } root) return 0;
        var ticks = 0L;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid)) continue;
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (IOException)
            {
                continue;
            }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var parent = int.Parse(fields[1], CultureInfo.InvariantCulture);
            if (pid != root && parent != root) continue;
            ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        return ticks / 100.0; // USER_HZ
    }
}
