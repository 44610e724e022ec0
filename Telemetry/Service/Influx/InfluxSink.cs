using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using IotRealtime.Telemetry.Sinks;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry.Influx;

/// <summary>
/// Writes readings to InfluxDB as line protocol: one point per reading, <c>telemetry,device=D,metric=M value=V T</c>
/// (tags device and metric, one float field, nanosecond timestamp).
/// <para>
/// Guarantee: at-least-once delivery made idempotent by point identity. InfluxDB keeps one point per measurement,
/// tag set and timestamp, and a second write of the same point overwrites the first, so a batch written again after a
/// crash or a retry leaves the same data. The Kafka positions a batch carries go to <c>telemetry_offsets</c> in the
/// same database only AFTER all its points were acknowledged; <see cref="LoadOffsetsAsync"/> reads them back, so a
/// restart resumes at or before the first reading not yet stored, never after it. The cost of point identity: two
/// readings of one device and metric with the same timestamp are one point (the later wins).
/// </para>
/// <para>
/// Refusals: readings that line protocol cannot carry (NaN, infinity, names <see cref="LineProtocol.CheckName"/>
/// refuses), lines InfluxDB answers 400/422 to (isolated by splitting the request) and payloads the decoder parked
/// are written to <c>telemetry_parked</c> with the reason, logged, and the stream moves on. 5xx, 429 and timeouts are
/// retried with backoff (<see cref="InfluxClient"/>); other 4xx answers fail the write with an error naming the
/// setting to check.
/// </para>
/// </summary>
public sealed class InfluxSink : ITelemetrySink
{
    const int MaxParkedText = 60_000; // InfluxDB 1.x refuses string fields over 64 KiB

    readonly InfluxSinkOptions _options;
    readonly string _consumerGroup;
    readonly TimeProvider _time;
    readonly ILogger _logger;
    readonly InfluxClient _client;
    readonly SemaphoreSlim _writeGate = new(1, 1);
    readonly ArrayBufferWriter<byte> _buffer = new(1 << 20);
    readonly List<(int Start, int End, int Reading)> _lines = [];
    readonly Dictionary<(string Topic, int Partition), long> _stored = [];
    readonly HashSet<string> _loadedTopics = [];
    long _lastOffsetTimestamp;
    long _pointsWritten;
    long _linesRefused;
    long _readingsRejected;
    long _payloadsParked;

    /// <param name="consumerGroup">The Kafka consumer group whose positions <see cref="WriteAsync"/> records.</param>
    public InfluxSink(InfluxSinkOptions options, string consumerGroup, TimeProvider time, ILogger<InfluxSink> logger, HttpMessageHandler? handler = null)
    {
        var problems = options.Validate().ToList();
        if (problems.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine, problems), nameof(options));
        _options = options;
        _consumerGroup = consumerGroup;
        _time = time;
        _logger = logger;
        _client = new InfluxClient(options, time, logger, handler);
    }

    public string Name => "influxdb";

    public long PointsWritten => Interlocked.Read(ref _pointsWritten);

    /// <summary>Lines InfluxDB answered 400/422 to, parked.</summary>
    public long LinesRefused => Interlocked.Read(ref _linesRefused);

    /// <summary>Readings line protocol cannot carry (NaN, infinity, unwritable names), parked.</summary>
    public long ReadingsRejected => Interlocked.Read(ref _readingsRejected);

    /// <summary>Payloads the decoder parked, recorded in the parked measurement.</summary>
    public long PayloadsParked => Interlocked.Read(ref _payloadsParked);

    public long Requests => _client.Requests;

    public long Retries => _client.Retries;

    public async Task InitializeAsync(CancellationToken ct)
    {
        await _client.InitializeAsync(ct).ConfigureAwait(false);
        InfluxLog.Ready(_logger, _options.Version, _options.Url,
            _options.Version == 1 ? $"database '{_options.Database}'" : $"org '{_options.Org}' bucket '{_options.Bucket}'", _options.Measurement);
    }

    public async Task WriteAsync(ReadingBatch batch, CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await EnsureOffsetsLoadedAsync(batch.Offsets, ct).ConfigureAwait(false);
            var newOffsets = batch.Offsets.Where(o => !_stored.TryGetValue((o.Topic, o.Partition), out var stored) || o.NextOffset > stored).ToList();
            if (batch.Offsets.Count > 0 && newOffsets.Count == 0)
            {
                // Every record of this batch is already stored (a redelivery after a restart): nothing to write.
                InfluxLog.SkippedStoredBatch(_logger, batch.Readings.Count);
                return;
            }

            var parked = new List<ParkedLine>();
            EncodeReadings(batch.Readings, parked);
            await WriteLinesAsync(batch.Readings, parked, ct).ConfigureAwait(false);
            foreach (var p in batch.Parked) parked.Add(ParkedPayloadLine(p));
            Interlocked.Add(ref _payloadsParked, batch.Parked.Count);
            await WriteParkedAsync(parked, ct).ConfigureAwait(false);

            // Only now, with every point acknowledged, do the positions move.
            if (newOffsets.Count > 0)
            {
                await WriteOffsetsAsync(newOffsets, ct).ConfigureAwait(false);
                foreach (var o in newOffsets) _stored[(o.Topic, o.Partition)] = o.NextOffset;
            }
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public async Task<IReadOnlyList<SourceOffset>> LoadOffsetsAsync(string consumerGroup, IReadOnlyCollection<string> topics, CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await LoadOffsetsCoreAsync(consumerGroup, topics, ct).ConfigureAwait(false);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    async Task<IReadOnlyList<SourceOffset>> LoadOffsetsCoreAsync(string consumerGroup, IReadOnlyCollection<string> topics, CancellationToken ct)
    {
        var rows = await QueryOffsetsAsync(consumerGroup, ct).ConfigureAwait(false);
        var wanted = topics.ToHashSet(StringComparer.Ordinal);
        var result = new List<SourceOffset>();
        foreach (var (topic, partition, next, time) in rows)
        {
            _lastOffsetTimestamp = Math.Max(_lastOffsetTimestamp, time);
            if (!wanted.Contains(topic)) continue;
            result.Add(new SourceOffset(topic, partition, next));
            if (consumerGroup == _consumerGroup) _stored[(topic, partition)] = next;
        }
        if (consumerGroup == _consumerGroup) _loadedTopics.UnionWith(wanted);
        result.Sort((a, b) => a.Topic != b.Topic ? string.CompareOrdinal(a.Topic, b.Topic) : a.Partition.CompareTo(b.Partition));
        InfluxLog.OffsetsLoaded(_logger, consumerGroup, result.Count == 0 ? "none" : string.Join(", ", result.Select(o => $"{o.Topic}[{o.Partition}]={o.NextOffset}")));
        return result;
    }

    async Task EnsureOffsetsLoadedAsync(List<SourceOffset> offsets, CancellationToken ct)
    {
        var missing = offsets.Select(o => o.Topic).Where(t => !_loadedTopics.Contains(t)).Distinct().ToList();
        if (missing.Count > 0) await LoadOffsetsCoreAsync(_consumerGroup, missing, ct).ConfigureAwait(false);
    }

    async Task<List<(string Topic, int Partition, long Next, long Time)>> QueryOffsetsAsync(string consumerGroup, CancellationToken ct)
    {
        var rows = new List<(string, int, long, long)>();
        if (_options.Version == 1)
        {
            var query = $"SELECT last(\"next_offset\") AS next_offset FROM {InfluxQl.Identifier(_options.OffsetsMeasurement)} "
                + $"WHERE \"consumer_group\" = {InfluxQl.Literal(consumerGroup)} GROUP BY \"topic\", \"partition\"";
            using var answer = await _client.QueryV1Async(query, _options.Database, ct).ConfigureAwait(false);
            foreach (var row in InfluxQl.Rows(answer))
            {
                var time = DateTimeOffset.Parse(row["time"].GetString()!, CultureInfo.InvariantCulture);
                rows.Add((row["topic"].GetString()!, int.Parse(row["partition"].GetString()!, CultureInfo.InvariantCulture),
                    row["next_offset"].GetInt64(), LineProtocol.ToUnixNanoseconds(time)));
            }
            return rows;
        }
        var flux = $"from(bucket: {InfluxQl.FluxString(_options.Bucket)}) |> range(start: 0) "
            + $"|> filter(fn: (r) => r._measurement == {InfluxQl.FluxString(_options.OffsetsMeasurement)} and r._field == \"next_offset\" and r.consumer_group == {InfluxQl.FluxString(consumerGroup)}) "
            + "|> group(columns: [\"topic\", \"partition\"]) |> last()";
        foreach (var row in await _client.QueryFluxAsync(flux, ct).ConfigureAwait(false))
        {
            var time = DateTimeOffset.Parse(row["_time"], CultureInfo.InvariantCulture);
            rows.Add((row["topic"], int.Parse(row["partition"], CultureInfo.InvariantCulture),
                long.Parse(row["_value"], CultureInfo.InvariantCulture), LineProtocol.ToUnixNanoseconds(time)));
        }
        return rows;
    }

    void EncodeReadings(List<Reading> readings, List<ParkedLine> parked)
    {
        _buffer.ResetWrittenCount();
        _lines.Clear();
        for (var i = 0; i < readings.Count; i++)
        {
            var r = readings[i];
            var problem = LineProtocol.CheckName(r.Device) is { } d ? $"device {d}"
                : LineProtocol.CheckName(r.Metric) is { } m ? $"metric {m}"
                : LineProtocol.CheckValue(r.Value) is { } v ? $"value {v}"
                : null;
            if (problem is not null)
            {
                InfluxLog.ReadingRejected(_logger, r.Device, r.Metric, problem);
                Interlocked.Increment(ref _readingsRejected);
                parked.Add(ParkedReadingLine(r, problem));
                continue;
            }
            var start = _buffer.WrittenCount;
            LineProtocol.AppendMeasurement(_buffer, _options.Measurement);
            AppendAscii(",device=");
            LineProtocol.AppendName(_buffer, r.Device);
            AppendAscii(",metric=");
            LineProtocol.AppendName(_buffer, r.Metric);
            AppendAscii(" value=");
            LineProtocol.AppendFloat(_buffer, r.Value);
            LineProtocol.AppendByte(_buffer, (byte)' ');
            LineProtocol.AppendTimestamp(_buffer, LineProtocol.ToUnixNanoseconds(r.Time));
            LineProtocol.AppendByte(_buffer, (byte)'\n');
            _lines.Add((start, _buffer.WrittenCount, i));
        }
    }

    async Task WriteLinesAsync(List<Reading> readings, List<ParkedLine> parked, CancellationToken ct)
    {
        var chunks = new List<(int From, int To)>();
        for (var from = 0; from < _lines.Count; from += _options.MaxPointsPerRequest)
        {
            chunks.Add((from, Math.Min(_lines.Count, from + _options.MaxPointsPerRequest)));
        }
        var refused = new List<(int Line, string Error)>();
        await Parallel.ForEachAsync(chunks, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxConcurrentRequests, CancellationToken = ct },
            async (chunk, token) => await WriteRangeAsync(chunk.From, chunk.To, refused, token).ConfigureAwait(false)).ConfigureAwait(false);
        foreach (var (line, error) in refused.OrderBy(r => r.Line))
        {
            var (start, end, reading) = _lines[line];
            var text = Encoding.UTF8.GetString(_buffer.WrittenSpan[start..(end - 1)]);
            InfluxLog.LineRefused(_logger, error, _options.ParkedMeasurement, text);
            parked.Add(ParkedRefusedLine(readings[reading].Time, text, error));
        }
        Interlocked.Add(ref _linesRefused, refused.Count);
        Interlocked.Add(ref _pointsWritten, _lines.Count - refused.Count);
    }

    /// <summary>Writes lines [from, to); a refused or too large request is split until the refused lines stand alone.</summary>
    async Task WriteRangeAsync(int from, int to, List<(int, string)> refused, CancellationToken ct)
    {
        var body = _buffer.WrittenMemory[_lines[from].Start.._lines[to - 1].End];
        var (outcome, error) = await _client.WriteAsync(body, ct).ConfigureAwait(false);
        if (outcome == InfluxWriteOutcome.Written) return;
        if (to - from == 1)
        {
            lock (refused) refused.Add((from, error));
            return;
        }
        // InfluxDB 1.x stores the good points of a partly refused request, 2.x may not; writing them again is harmless.
        var middle = from + (to - from) / 2;
        await WriteRangeAsync(from, middle, refused, ct).ConfigureAwait(false);
        await WriteRangeAsync(middle, to, refused, ct).ConfigureAwait(false);
    }

    async Task WriteOffsetsAsync(List<SourceOffset> offsets, CancellationToken ct)
    {
        // Offsets are read back with last(); a timestamp that only grows keeps the newest on top even if the clock steps back.
        var now = LineProtocol.ToUnixNanoseconds(_time.GetUtcNow());
        _lastOffsetTimestamp = Math.Max(now, _lastOffsetTimestamp + 1);
        var w = new ArrayBufferWriter<byte>(offsets.Count * 96);
        foreach (var o in offsets)
        {
            LineProtocol.AppendMeasurement(w, _options.OffsetsMeasurement);
            Append(w, ",consumer_group=");
            LineProtocol.AppendName(w, _consumerGroup);
            Append(w, ",partition=");
            Append(w, o.Partition.ToString(CultureInfo.InvariantCulture));
            Append(w, ",topic=");
            LineProtocol.AppendName(w, o.Topic);
            Append(w, " next_offset=");
            LineProtocol.AppendInteger(w, o.NextOffset);
            LineProtocol.AppendByte(w, (byte)' ');
            LineProtocol.AppendTimestamp(w, _lastOffsetTimestamp);
            LineProtocol.AppendByte(w, (byte)'\n');
        }
        var (outcome, error) = await _client.WriteAsync(w.WrittenMemory, ct).ConfigureAwait(false);
        if (outcome != InfluxWriteOutcome.Written)
        {
            // Not parked: moving on without the positions would be the silent loss this sink exists to prevent.
            throw new InfluxException($"InfluxDB refused the offsets write to '{_options.OffsetsMeasurement}': {error}", transient: false);
        }
    }

    async Task WriteParkedAsync(List<ParkedLine> parked, CancellationToken ct)
    {
        if (parked.Count == 0) return;
        var w = new ArrayBufferWriter<byte>();
        foreach (var p in parked) p.Write(w, _options.ParkedMeasurement);
        var (outcome, error) = await _client.WriteAsync(w.WrittenMemory, ct).ConfigureAwait(false);
        if (outcome != InfluxWriteOutcome.Written)
        {
            InfluxLog.ParkingRefused(_logger, error, Encoding.UTF8.GetString(w.WrittenSpan));
        }
    }

    static ParkedLine ParkedPayloadLine(ParkedPayload p)
    {
        // Kafka timestamps are milliseconds; the offset in the sub-millisecond digits keeps every record its own point.
        var time = LineProtocol.ToUnixNanoseconds(p.Time) / 1_000_000 * 1_000_000 + p.Offset % 1_000_000;
        var payload = Convert.ToBase64String(p.Payload);
        var truncated = payload.Length > MaxParkedText;
        List<(string, object)> fields =
        [
            ("offset", p.Offset),
            ("reason", Shorten(p.Reason)),
            ("payload_base64", truncated ? payload[..MaxParkedText] : payload),
            ("payload_bytes", (long)p.Payload.Length),
        ];
        // Left out when unknown, so a reader tells "no device" from an empty name.
        if (p.Device is not null) fields.Add(("device", Shorten(p.Device)));
        if (p.MqttTopic is not null) fields.Add(("mqtt_topic", Shorten(p.MqttTopic)));
        return new ParkedLine("payload", [("topic", p.Topic), ("partition", p.Partition.ToString(CultureInfo.InvariantCulture))], time, [.. fields]);
    }

    static ParkedLine ParkedReadingLine(Reading r, string reason) =>
        new("reading", [("key", Key(r.Device + "\n" + r.Metric))], LineProtocol.ToUnixNanoseconds(r.Time),
        [
            ("reason", reason),
            ("device", Shorten(r.Device)),
            ("metric", Shorten(r.Metric)),
            ("value", r.Value.ToString("R", CultureInfo.InvariantCulture)),
        ]);

    static ParkedLine ParkedRefusedLine(DateTimeOffset time, string line, string error) =>
        new("refused", [("key", Key(line))], LineProtocol.ToUnixNanoseconds(time), [("reason", Shorten(error)), ("line", Shorten(line))]);

    /// <summary>A short stable tag that keeps distinct parked records with one timestamp apart.</summary>
    static string Key(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)).AsSpan(0, 8));

    static string Shorten(string text) => text.Length > MaxParkedText ? text[..MaxParkedText] : text;

    void AppendAscii(string text) => Append(_buffer, text);

    static void Append(IBufferWriter<byte> w, string ascii)
    {
        var span = w.GetSpan(ascii.Length);
        for (var i = 0; i < ascii.Length; i++) span[i] = (byte)ascii[i];
        w.Advance(ascii.Length);
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        _writeGate.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>One point of the parked measurement: tag kind plus identity tags, string or integer fields.</summary>
    sealed record ParkedLine(string Kind, (string Key, string Value)[] Tags, long Time, (string Key, object Value)[] Fields)
    {
        public void Write(IBufferWriter<byte> w, string measurement)
        {
            LineProtocol.AppendMeasurement(w, measurement);
            Append(w, ",kind=");
            Append(w, Kind);
            foreach (var (key, value) in Tags.OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                Append(w, ",");
                LineProtocol.AppendName(w, key);
                LineProtocol.AppendByte(w, (byte)'=');
                LineProtocol.AppendName(w, value);
            }
            var separator = ' ';
            foreach (var (key, value) in Fields)
            {
                LineProtocol.AppendByte(w, (byte)separator);
                separator = ',';
                LineProtocol.AppendName(w, key);
                LineProtocol.AppendByte(w, (byte)'=');
                if (value is long l) LineProtocol.AppendInteger(w, l);
                else LineProtocol.AppendString(w, (string)value);
            }
            LineProtocol.AppendByte(w, (byte)' ');
            LineProtocol.AppendTimestamp(w, Time);
            LineProtocol.AppendByte(w, (byte)'\n');
        }
    }
}
