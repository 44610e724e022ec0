using System.Buffers;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Host.Configuration;
using IotRealtime.Broker.Kafka;
using IotRealtime.Hosting.Kafka;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace IotRealtime.Broker.Host.Operations;

/// <summary>
/// <c>GET /api/replay</c>: forwarded messages read back from Kafka, as NDJSON or server-sent events (admin API rules).
/// Query: <c>topic</c> (a Kafka topic) or <c>filter</c> (an MQTT filter: the Kafka topics the rules map it to, records
/// filtered by MQTT topic), <c>from</c> (earliest | offset | positions | ISO time), <c>to</c> (ISO time | end),
/// <c>limit</c> (default 1000, at most 100000), <c>format</c> (ndjson | sse). SSE events carry <c>id: &lt;cursor&gt;</c>
/// (the last position read in each partition); a client resumes with Last-Event-ID (or <c>after</c>) = that cursor, with
/// no gap and no duplicate. The stream ends with <c>event: end</c>; a cursor older than retained history answers 410.
/// </summary>
public static class ReplayEndpoints
{
    public const int DefaultLimit = 1_000;
    public const int MaxLimit = 100_000;

    internal static void MapReplay(WebApplication app)
    {
        var settings = app.Services.GetRequiredService<HostSettings>();
        var admin = app.Services.GetRequiredService<AdminOptions>();
        var time = app.Services.GetRequiredService<TimeProvider>();
        app.MapGet("/api/replay", context => OperationsEndpoints.IsAuthorized(context, admin)
            ? ReplayAsync(context, settings.Kafka, time)
            : OperationsEndpoints.Deny(context, admin));
    }

    static async Task ReplayAsync(HttpContext context, KafkaOptions kafka, TimeProvider time)
    {
        if (!kafka.Enabled)
        {
            await OperationsEndpoints.Error(context, StatusCodes.Status404NotFound, "replay reads Kafka, and Kafka:BootstrapServers is not configured").ConfigureAwait(false);
            return;
        }
        var query = context.Request.Query;
        var sse = query["format"].FirstOrDefault() is { } format
            ? format switch
            {
                "sse" => true,
                "ndjson" => false,
                _ => (bool?)null,
            }
            : context.Request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.Ordinal);
        if (sse is null)
        {
            await OperationsEndpoints.Error(context, StatusCodes.Status400BadRequest, "format must be ndjson or sse").ConfigureAwait(false);
            return;
        }

        ReplayRequest request;
        try
        {
            request = BuildRequest(query, context.Request.Headers["Last-Event-ID"].FirstOrDefault(), kafka);
        }
        catch (FormatException e)
        {
            await OperationsEndpoints.Error(context, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
            return;
        }

        KafkaReplay replay;
        try
        {
            replay = await new KafkaReplayer(kafka.BootstrapServers).OpenAsync(request, context.RequestAborted).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await OperationsEndpoints.Error(context, StatusCodes.Status404NotFound, e.Message).ConfigureAwait(false);
            return;
        }
        catch (KafkaHistoryGapException e)
        {
            await OperationsEndpoints.Error(context, StatusCodes.Status410Gone, e.Message).ConfigureAwait(false);
            return;
        }
        catch (KafkaException e)
        {
            await OperationsEndpoints.Error(context, StatusCodes.Status503ServiceUnavailable, "Kafka: " + e.Message).ConfigureAwait(false);
            return;
        }

        await using (replay.ConfigureAwait(false))
        {
            var response = context.Response;
            response.ContentType = sse.Value ? "text/event-stream; charset=utf-8" : "application/x-ndjson; charset=utf-8";
            response.Headers.CacheControl = "no-cache";
            var body = response.BodyWriter;
            var cursor = new KafkaCursor(replay.Start);
            long count = 0;
            var lastFlush = time.GetTimestamp();
            try
            {
                await foreach (var record in replay.ReadAllAsync(context.RequestAborted).ConfigureAwait(false))
                {
                    cursor.Advance(record.Position);
                    count++;
                    var json = KafkaRecordFormat.ToJson(record);
                    if (sse.Value)
                    {
                        Write(body, "id: " + cursor + "\ndata: ");
                        body.Write(json);
                        Write(body, "\n\n");
                    }
                    else
                    {
                        body.Write(json);
                        Write(body, "\n");
                    }
                    // Batches of records per write, yet a slow trickle still reaches the client within 100 ms.
                    if (count % 64 == 0 || time.GetElapsedTime(lastFlush) >= TimeSpan.FromMilliseconds(100))
                    {
                        await body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                        lastFlush = time.GetTimestamp();
                    }
                }
                if (sse.Value) Write(body, string.Create(CultureInfo.InvariantCulture, $"event: end\nid: {cursor}\ndata: {{\"count\":{count},\"cursor\":\"{cursor}\"}}\n\n"));
            }
            catch (KafkaException e)
            {
                // Headers are gone: the failure is the stream's last item, never a silent truncation.
                var message = System.Text.Json.JsonEncodedText.Encode("Kafka: " + e.Message);
                Write(body, sse.Value
                    ? $"event: error\ndata: {{\"error\":\"{message}\",\"cursor\":\"{cursor}\"}}\n\n"
                    : $"{{\"error\":\"{message}\",\"cursor\":\"{cursor}\"}}\n");
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                return;
            }
            await body.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    static ReplayRequest BuildRequest(IQueryCollection query, string? lastEventId, KafkaOptions kafka)
    {
        var topic = query["topic"].FirstOrDefault();
        var filter = query["filter"].FirstOrDefault();
        var after = lastEventId ?? query["after"].FirstOrDefault();
        if (topic is not null && !KafkaTopicName.IsValid(topic)) throw new FormatException($"topic '{topic}' is not a valid Kafka topic");
        if (filter is not null && !TopicValidation.IsValidTopicFilter(filter)) throw new FormatException($"filter '{filter}' is not a valid MQTT topic filter");
        if (topic is null && filter is null) throw new FormatException("give topic=<Kafka topic> or filter=<MQTT topic filter>");

        var from = ReplayFrom.Earliest;
        if (!string.IsNullOrWhiteSpace(after)) from = ReplayFrom.After(KafkaPosition.ParseList(after));
        else if (query["from"].FirstOrDefault() is { } fromText) from = ReplayFrom.Parse(fromText);

        DateTimeOffset? to = null;
        if (query["to"].FirstOrDefault() is { } toText && !toText.Equals("end", StringComparison.OrdinalIgnoreCase))
        {
            to = ReplayFrom.TryParseTime(toText, out var time) ? time : throw new FormatException($"to '{toText}' is not valid; expected an ISO 8601 time or end");
        }

        long limit = DefaultLimit;
        if (query["limit"].FirstOrDefault() is { } limitText
            && (!long.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            throw new FormatException($"limit '{limitText}' is not valid; expected 1 to {MaxLimit}");
        }

        IReadOnlyList<string> topics = topic is not null ? [topic] : kafka.KafkaTopicsFor(filter!);
        if (topics.Count == 0) throw new FormatException($"no forwarding rule sends topics matching '{filter}' to Kafka");
        return new ReplayRequest { Topics = topics, MqttFilter = filter, From = from, To = to, Limit = limit };
    }

    static void Write(System.IO.Pipelines.PipeWriter body, string text) => body.Write(Encoding.UTF8.GetBytes(text));
}
