using IotRealtime.Bridges.Auth;
using IotRealtime.Bridges.Configuration;
using IotRealtime.Bridges.Feed;
using IotRealtime.Bridges.Fleet;
using IotRealtime.Bridges.Operations;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using Microsoft.AspNetCore.Http;

namespace IotRealtime.Bridges.Sse;

/// <summary>GET /sse?topic=…&amp;topic=…[&amp;lastEventId=…][&amp;from=earliest][&amp;token=…] (docs/bridges.md).</summary>
sealed class SseEndpoint(BridgesOptions options, FeedHub hub, IHistorySource history, IBrokerLink broker, BridgeAuth auth,
    StreamRegistry registry, BridgeMetrics metrics, TimeProvider time)
{
    public const string PresenceFilter = "$presence";

    /// <summary>Filters that a $presence subscription needs the ACL to allow.</summary>
    public const string PresenceAclFilter = "$SYS/broker/clients/#";

    public async Task HandleAsync(HttpContext context)
    {
        var sse = options.Sse;
        var topics = context.Request.Query["topic"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!).Distinct(StringComparer.Ordinal).ToList();
        if (topics.Count == 0)
        {
            await BridgeHttp.Error(context, StatusCodes.Status400BadRequest, "at least one topic=<filter> is required (an MQTT topic filter such as devices/+/telemetry, or $presence)").ConfigureAwait(false);
            return;
        }
        if (topics.Count > sse.MaxFiltersPerStream)
        {
            await BridgeHttp.Error(context, StatusCodes.Status400BadRequest, $"at most {sse.MaxFiltersPerStream} topic filters per stream (got {topics.Count})").ConfigureAwait(false);
            return;
        }
        if (FilterRules.FirstInvalid(topics) is { } invalid)
        {
            await BridgeHttp.Error(context, StatusCodes.Status400BadRequest, invalid).ConfigureAwait(false);
            return;
        }
        if (auth.Authenticate(context) is not { } identity)
        {
            metrics.RejectedAuth();
            await BridgeHttp.Error(context, StatusCodes.Status401Unauthorized, "a valid token is required: POST /api/token, then pass it as ?token=").ConfigureAwait(false);
            return;
        }
        var filtered = false;
        foreach (var topic in topics)
        {
            var decision = broker.Authorizer.CanSubscribe(identity, topic == PresenceFilter ? PresenceAclFilter : topic);
            if (decision == SubscribeDecision.Deny)
            {
                await BridgeHttp.Error(context, StatusCodes.Status403Forbidden, $"not authorized to subscribe to '{topic}'").ConfigureAwait(false);
                return;
            }
            filtered |= decision == SubscribeDecision.AllowFiltered && topic != PresenceFilter;
        }
        if (registry.Draining)
        {
            context.Response.Headers.RetryAfter = "5";
            await BridgeHttp.Error(context, StatusCodes.Status503ServiceUnavailable, "the server is draining: reconnect to another instance").ConfigureAwait(false);
            return;
        }

        var start = StartOf(context);
        var clientKey = BridgeAuth.ClientKey(context, identity);
        if (!registry.TryAcquire("sse|" + clientKey, sse.MaxStreamsPerClient))
        {
            metrics.RejectedLimit();
            await BridgeHttp.Error(context, StatusCodes.Status429TooManyRequests, $"at most {sse.MaxStreamsPerClient} streams per client").ConfigureAwait(false);
            return;
        }

        var filters = topics.Where(t => t != PresenceFilter).ToList();
        var connection = new SseConnection(sse, metrics, broker.Authorizer, identity, filtered, time, context.Abort);
        IDisposable? presence = null;
        registry.Add(connection);
        metrics.SseOpened();
        try
        {
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            context.Response.Headers["X-Accel-Buffering"] = "no";
            if (topics.Contains(PresenceFilter)) presence = broker.SubscribePresence(connection.OfferPresence);
            var retry = sse.RetryMs + Random.Shared.Next(sse.RetryJitterMs + 1);
            await connection.RunAsync(context.Response.BodyWriter, hub, history, filters, start, retry, time, context.RequestAborted).ConfigureAwait(false);
        }
        catch (Confluent.Kafka.KafkaException e) when (!context.Response.HasStarted)
        {
            context.Response.Headers.RetryAfter = "5";
            await BridgeHttp.Error(context, StatusCodes.Status503ServiceUnavailable, $"history is not available from Kafka now: {e.Error.Reason}").ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
            // the client went away mid-write
        }
        catch (OperationCanceledException) when (connection.ClosedByServer)
        {
        }
        finally
        {
            presence?.Dispose();
            hub.Unsubscribe(connection);
            connection.Complete();
            registry.Remove(connection);
            registry.Release("sse|" + clientKey);
            metrics.SseClosed();
        }
    }

    /// <summary>Last-Event-ID (what EventSource sends on reconnect) wins over ?lastEventId=, which wins over ?from=earliest.</summary>
    static HistoryStart StartOf(HttpContext context)
    {
        var header = context.Request.Headers["Last-Event-ID"].FirstOrDefault();
        if (!string.IsNullOrEmpty(header)) return HistoryStart.After(header);
        var query = context.Request.Query["lastEventId"].FirstOrDefault();
        if (!string.IsNullOrEmpty(query)) return HistoryStart.After(query);
        return string.Equals(context.Request.Query["from"].FirstOrDefault(), "earliest", StringComparison.OrdinalIgnoreCase) ? HistoryStart.Earliest : HistoryStart.Live;
    }
}

/// <summary>Which filters browsers may use.</summary>
static class FilterRules
{
    /// <summary>The problem with the first filter that is not acceptable, or null.</summary>
    public static string? FirstInvalid(IEnumerable<string> filters)
    {
        foreach (var filter in filters)
        {
            if (Problem(filter) is { } problem) return problem;
        }
        return null;
    }

    public static string? Problem(string filter)
    {
        if (filter == SseEndpoint.PresenceFilter) return null;
        if (filter.StartsWith("$share/", StringComparison.Ordinal)) return $"'{filter}': shared subscriptions are not available to browsers";
        if (filter.Length > 1024 || !TopicValidation.IsValidTopicFilter(filter)) return $"'{filter}' is not a valid MQTT topic filter (levels separated by '/', '+' for one level, '#' last for the rest)";
        return null;
    }
}
