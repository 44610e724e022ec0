using System.Globalization;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Kafka;
using IotRealtime.Hosting.Kafka;
using Microsoft.Extensions.Configuration;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Host.Cli;

/// <summary>
/// <c>iotrealtime-broker replay</c>: reads forwarded MQTT messages back out of Kafka, as NDJSON lines on stdout or
/// republished into a broker under a prefix. Bounded: it stops at the high watermarks taken at start, --to, or --limit.
/// </summary>
public static class ReplayCommand
{
    public const string Name = "replay";

    public const string Usage = """
        Usage: iotrealtime-broker replay [--bootstrap HOST:PORT] (--topic KAFKA_TOPIC | --filter MQTT_FILTER [--config FILE])
                 [--from earliest|OFFSET|POSITIONS|ISO-TIME] [--after POSITIONS] [--to ISO-TIME|end] [--limit N] [--format ndjson]
                 [--into mqtt://HOST:PORT [--prefix replay/] [--rate MSG_PER_S]]

          --bootstrap  Kafka bootstrap servers; default Kafka:BootstrapServers of the configuration
          --topic      the Kafka topic to read (with --filter too: only records whose MQTT topic matches)
          --filter     an MQTT topic filter: reads the Kafka topics the forwarding rules map it to, keeps matching records
          --config     a JSON file with the broker's Kafka section (rules); default: the broker's own configuration
                       (appsettings.json next to the binary, IOTRT_ environment variables)
          --from       earliest (default), an offset for every partition, positions topic/partition/offset[,...]
                       to start at, or an ISO 8601 time (UTC unless it has an offset)
          --after      positions to resume after (the "position" of the last line you have): no gap, no duplicate
          --to         stop at records stamped after this time; end (default) stops at the end the topic had at start
          --limit      stop after N records
          --format     ndjson (default): {"position","topic","ts","qos","retain","clientId","payload","enc"} per line
          --into       republish each record into this broker under --prefix (default replay/), at most --rate
                       messages per second (default 1000), QoS as recorded (at most 1), never retained
        Exit codes: 0 done, 1 Kafka or the target broker failed, 2 bad arguments.
        """;

    sealed class Arguments
    {
        public string? Bootstrap;
        public string? Topic;
        public string? Filter;
        public string? Config;
        public ReplayFrom From = ReplayFrom.Earliest;
        public DateTimeOffset? To;
        public long? Limit;
        public Uri? Into;
        public string Prefix = "replay/";
        public double Rate = 1000;
    }

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (args.Any(a => a is "-h" or "--help"))
        {
            await output.WriteLineAsync(Usage).ConfigureAwait(false);
            return 0;
        }

        Arguments parsed;
        ReplayRequest request;
        try
        {
            parsed = Parse(args);
            request = BuildRequest(parsed);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidDataException or InvalidOperationException)
        {
            await error.WriteLineAsync($"replay: {e.Message}").ConfigureAwait(false);
            await error.WriteLineAsync("Run 'iotrealtime-broker replay --help' for usage.").ConfigureAwait(false);
            return 2;
        }

        var replayer = new KafkaReplayer(parsed.Bootstrap!);
        try
        {
            var replay = await replayer.OpenAsync(request, cancellationToken).ConfigureAwait(false);
            await using (replay.ConfigureAwait(false))
            {
                if (parsed.Into is null)
                {
                    await foreach (var record in replay.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                    {
                        await output.WriteLineAsync(Encoding.UTF8.GetString(KafkaRecordFormat.ToJson(record))).ConfigureAwait(false);
                    }
                    await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    return 0;
                }
                var count = await RepublishAsync(replay, parsed, cancellationToken).ConfigureAwait(false);
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"Replayed {count} messages into {parsed.Into} under '{parsed.Prefix}'.")).ConfigureAwait(false);
                return 0;
            }
        }
        catch (ArgumentException e)
        {
            await error.WriteLineAsync($"replay: {e.Message}").ConfigureAwait(false);
            return 2;
        }
        catch (Exception e) when (e is KafkaException or KafkaHistoryGapException or MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
            await error.WriteLineAsync($"replay: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    static Arguments Parse(string[] args)
    {
        var a = new Arguments();
        string? from = null;
        string? after = null;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string? inline = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0) (arg, inline) = (arg[..eq], arg[(eq + 1)..]);
            string Value() => inline ?? (i + 1 < args.Length ? args[++i] : throw new FormatException($"{arg} needs a value."));
            switch (arg)
            {
                case "--bootstrap": a.Bootstrap = Value(); break;
                case "--topic": a.Topic = Value(); break;
                case "--filter": a.Filter = Value(); break;
                case "--config" or "--rule-file": a.Config = Value(); break;
                case "--from": from = Value(); break;
                case "--after": after = Value(); break;
                case "--to":
                    var to = Value();
                    if (to.Equals("end", StringComparison.OrdinalIgnoreCase)) a.To = null;
                    else if (ReplayFrom.TryParseTime(to, out var time)) a.To = time;
                    else throw new FormatException($"--to '{to}' is not valid; expected an ISO 8601 time (2026-03-01T12:00:00Z) or end.");
                    break;
                case "--limit":
                    var limit = Value();
                    a.Limit = long.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                        ? n : throw new FormatException($"--limit '{limit}' is not valid; expected a whole number above 0.");
                    break;
                case "--format":
                    var format = Value();
                    if (!format.Equals("ndjson", StringComparison.OrdinalIgnoreCase)) throw new FormatException($"--format '{format}' is not supported; the format is ndjson.");
                    break;
                case "--into":
                    var into = Value();
                    a.Into = Uri.TryCreate(into, UriKind.Absolute, out var uri) && uri.Scheme == "mqtt" && uri.Host.Length > 0
                        ? uri : throw new FormatException($"--into '{into}' is not valid; expected mqtt://host:port.");
                    break;
                case "--prefix": a.Prefix = Value(); break;
                case "--rate":
                    var rate = Value();
                    a.Rate = double.TryParse(rate, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) && r > 0 && double.IsFinite(r)
                        ? r : throw new FormatException($"--rate '{rate}' is not valid; expected messages per second above 0.");
                    break;
                default:
                    throw new FormatException($"unknown argument '{args[i]}'.");
            }
        }
        if (from is not null && after is not null) throw new FormatException("give --from or --after, not both.");
        if (from is not null) a.From = ReplayFrom.Parse(from);
        if (after is not null) a.From = ReplayFrom.After(KafkaPosition.ParseList(after));
        if (a.Topic is null && a.Filter is null && a.From.Positions.Count == 0) throw new FormatException("give --topic KAFKA_TOPIC or --filter MQTT_FILTER.");
        if (a.Topic is not null && !KafkaTopicName.IsValid(a.Topic)) throw new FormatException($"--topic '{a.Topic}' is not a valid Kafka topic.");
        if (a.Filter is not null && !TopicValidation.IsValidTopicFilter(a.Filter)) throw new FormatException($"--filter '{a.Filter}' is not a valid MQTT topic filter.");
        if (a.Into is null && (args.Contains("--prefix") || args.Contains("--rate"))) throw new FormatException("--prefix and --rate apply only with --into.");
        if (a.Prefix.Contains('+', StringComparison.Ordinal) || a.Prefix.Contains('#', StringComparison.Ordinal)) throw new FormatException($"--prefix '{a.Prefix}' must not contain wildcards.");
        return a;
    }

    static ReplayRequest BuildRequest(Arguments a)
    {
        // Rules and bootstrap servers come from --config or the broker's own configuration, when needed.
        KafkaOptions? options = null;
        if (a.Bootstrap is null || (a.Filter is not null && a.Topic is null))
        {
            options = LoadKafkaOptions(a.Config);
        }
        a.Bootstrap ??= string.IsNullOrWhiteSpace(options?.BootstrapServers)
            ? throw new FormatException("give --bootstrap HOST:PORT (Kafka:BootstrapServers is not configured).")
            : options.BootstrapServers;
        IReadOnlyList<string> topics = [];
        if (a.Topic is not null)
        {
            topics = [a.Topic];
        }
        else if (a.Filter is not null)
        {
            topics = options!.KafkaTopicsFor(a.Filter);
            if (topics.Count == 0) throw new FormatException($"no forwarding rule sends topics matching '{a.Filter}' to Kafka (and the default topic is off).");
        }
        return new ReplayRequest { Topics = topics, MqttFilter = a.Filter, From = a.From, To = a.To, Limit = a.Limit };
    }

    static KafkaOptions LoadKafkaOptions(string? file)
    {
        IConfiguration configuration;
        if (file is null)
        {
            configuration = CommandLine.BuildConfiguration([]);
        }
        else
        {
            if (!File.Exists(file)) throw new FormatException($"--config '{file}' does not exist.");
            configuration = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false).Build();
        }
        var options = configuration.GetSection(KafkaOptions.Section).Get<KafkaOptions>() ?? new KafkaOptions();
        if (options.Validate().FirstOrDefault() is { } problem) throw new FormatException(problem);
        return options;
    }

    static async Task<long> RepublishAsync(KafkaReplay replay, Arguments a, CancellationToken cancellationToken)
    {
        using var client = new MqttClientFactory().CreateMqttClient();
        var port = a.Into!.IsDefaultPort || a.Into.Port < 0 ? 1883 : a.Into.Port;
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(a.Into.Host, port)
            .WithClientId("iotrealtime-replay-" + Guid.NewGuid().ToString("N")[..8])
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithTimeout(TimeSpan.FromSeconds(10));
        if (a.Into.UserInfo.Length > 0)
        {
            var parts = a.Into.UserInfo.Split(':', 2);
            options.WithCredentials(Uri.UnescapeDataString(parts[0]), parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : null);
        }
        await client.ConnectAsync(options.Build(), cancellationToken).ConfigureAwait(false);

        var time = TimeProvider.System;
        var started = time.GetTimestamp();
        long count = 0;
        await foreach (var record in replay.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (record.Topic is null) continue;
            // Paced against the start, so a slow send is caught up rather than stretching the whole replay.
            var due = TimeSpan.FromSeconds(count / a.Rate) - time.GetElapsedTime(started);
            if (due > TimeSpan.Zero) await Task.Delay(due, time, cancellationToken).ConfigureAwait(false);
            var message = new MqttApplicationMessageBuilder()
                .WithTopic(a.Prefix + record.Topic)
                .WithPayload(record.Payload)
                .WithQualityOfServiceLevel(record.QoS >= 1 ? MqttQualityOfServiceLevel.AtLeastOnce : MqttQualityOfServiceLevel.AtMostOnce)
                .WithContentType(record.ContentType)
                .WithUserProperty("replay.position", Encoding.UTF8.GetBytes(record.Position.ToString()).AsMemory())
                .Build();
            var result = await client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
            if (!result.IsSuccess) throw new MQTTnet.Exceptions.MqttCommunicationException($"the target broker refused {a.Prefix + record.Topic}: {result.ReasonCode}");
            count++;
        }
        await client.DisconnectAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return count;
    }
}
