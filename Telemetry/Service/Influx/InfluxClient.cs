using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Telemetry.Influx;

/// <summary>What InfluxDB made of one write request.</summary>
public enum InfluxWriteOutcome
{
    Written,
    /// <summary>400/422: the lines (or some of them) are malformed or conflict with stored field types.</summary>
    Refused,
    /// <summary>413: the body exceeds the server's max-body-size.</summary>
    TooLarge,
}

/// <summary>
/// The InfluxDB HTTP API over <see cref="HttpClient"/> (the InfluxDB.Client package is not used): line protocol writes
/// (v1 <c>/write</c>, v2 <c>/api/v2/write</c>), InfluxQL (v1 <c>/query</c>) and Flux (v2 <c>/api/v2/query</c>).
/// Writes retry 5xx, 429, timeouts and refused connections with exponential backoff for
/// <see cref="InfluxSinkOptions.RetryForMs"/>; 4xx answers are never retried.
/// </summary>
public sealed class InfluxClient : IDisposable
{
    readonly InfluxSinkOptions _options;
    readonly HttpClient _http;
    readonly TimeProvider _time;
    readonly ILogger _logger;
    readonly string _writePath;

    public InfluxClient(InfluxSinkOptions options, TimeProvider time, ILogger logger, HttpMessageHandler? handler = null)
    {
        _options = options;
        _time = time;
        _logger = logger;
        var baseUrl = options.Url.EndsWith('/') ? options.Url : options.Url + "/";
        // Per-request timeouts come from RequestTimeoutMs; HttpClient's own would throw a different exception.
        _http = new HttpClient(handler ?? new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) })
        {
            BaseAddress = new Uri(baseUrl),
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _writePath = options.Version == 1
            ? $"write?db={Uri.EscapeDataString(options.Database)}&precision=ns"
              + (options.RetentionPolicy.Length > 0 ? $"&rp={Uri.EscapeDataString(options.RetentionPolicy)}" : "")
            : $"api/v2/write?org={Uri.EscapeDataString(options.Org)}&bucket={Uri.EscapeDataString(options.Bucket)}&precision=ns";
    }

    /// <summary>Requests sent, retries included.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Requests that were sent again after a 5xx, 429, timeout or connection failure.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    long _requests;
    long _retries;

    /// <summary>
    /// v1: CREATE DATABASE when <see cref="InfluxSinkOptions.CreateDatabase"/> is on, else a check that the database exists;
    /// v2: a check that the bucket exists in the organisation.
    /// </summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        if (_options.Version == 1)
        {
            if (_options.CreateDatabase)
            {
                await QueryV1Async($"CREATE DATABASE {InfluxQl.Identifier(_options.Database)}", database: null, ct).ConfigureAwait(false);
                return;
            }
            using var databases = await QueryV1Async("SHOW DATABASES", database: null, ct).ConfigureAwait(false);
            var names = InfluxQl.Rows(databases).Select(r => r.GetValueOrDefault("name").ToString());
            if (!names.Contains(_options.Database))
            {
                throw new InfluxException($"InfluxDB database '{_options.Database}' does not exist (Telemetry:Influx:Database; or set Telemetry:Influx:CreateDatabase).", transient: false);
            }
            return;
        }
        var path = $"api/v2/buckets?org={Uri.EscapeDataString(_options.Org)}&name={Uri.EscapeDataString(_options.Bucket)}";
        var (status, body) = await SendOnceWithRetryAsync(() => new HttpRequestMessage(HttpMethod.Get, path), "bucket lookup", ct).ConfigureAwait(false);
        if (status == HttpStatusCode.NotFound) throw new InfluxException($"InfluxDB organisation '{_options.Org}' was not found (Telemetry:Influx:Org): {body}", transient: false, (int)status);
        ThrowUnlessSuccess(status, body, "bucket lookup");
        using var document = JsonDocument.Parse(body);
        if (!document.RootElement.TryGetProperty("buckets", out var buckets) || buckets.GetArrayLength() == 0)
        {
            throw new InfluxException($"InfluxDB bucket '{_options.Bucket}' does not exist in organisation '{_options.Org}' (Telemetry:Influx:Bucket); create it with the retention it needs.", transient: false);
        }
    }

    /// <summary>Writes line protocol (newline-terminated lines, precision ns); retries until written, refused or out of time.</summary>
    public async Task<(InfluxWriteOutcome Outcome, string Error)> WriteAsync(ReadOnlyMemory<byte> lines, CancellationToken ct)
    {
        var body = _options.Gzip ? Compress(lines.Span) : lines;
        var (status, text) = await SendOnceWithRetryAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, _writePath) { Content = new ReadOnlyMemoryContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("text/plain") { CharSet = "utf-8" };
            if (_options.Gzip) request.Content.Headers.ContentEncoding.Add("gzip");
            return request;
        }, "write", ct).ConfigureAwait(false);
        if (status is HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity) return (InfluxWriteOutcome.Refused, ErrorText(text));
        if (status == HttpStatusCode.RequestEntityTooLarge) return (InfluxWriteOutcome.TooLarge, ErrorText(text));
        if (status == HttpStatusCode.NotFound)
        {
            throw new InfluxException(_options.Version == 1
                ? $"InfluxDB has no database '{_options.Database}' (Telemetry:Influx:Database): {ErrorText(text)}"
                : $"InfluxDB has no bucket '{_options.Bucket}' in organisation '{_options.Org}' (Telemetry:Influx:Bucket, Telemetry:Influx:Org): {ErrorText(text)}",
                transient: false, (int)status);
        }
        ThrowUnlessSuccess(status, text, "write");
        return (InfluxWriteOutcome.Written, string.Empty);
    }

    /// <summary>Runs InfluxQL against v1 <c>/query</c> (POST, so statements that change things are allowed).</summary>
    public async Task<JsonDocument> QueryV1Async(string query, string? database, CancellationToken ct)
    {
        var form = new List<KeyValuePair<string, string>> { new("q", query) };
        if (database is not null) form.Add(new("db", database));
        var (status, body) = await SendOnceWithRetryAsync(() => new HttpRequestMessage(HttpMethod.Post, "query") { Content = new FormUrlEncodedContent(form) }, "query", ct).ConfigureAwait(false);
        if (status == HttpStatusCode.BadRequest) throw new InfluxException($"InfluxDB refused the query '{query}': {ErrorText(body)}", transient: false, (int)status);
        ThrowUnlessSuccess(status, body, "query");
        var document = JsonDocument.Parse(body);
        foreach (var result in document.RootElement.GetProperty("results").EnumerateArray())
        {
            if (result.TryGetProperty("error", out var error))
            {
                document.Dispose();
                throw new InfluxException($"InfluxDB refused the query '{query}': {error.GetString()}", transient: false);
            }
        }
        return document;
    }

    /// <summary>Runs Flux against v2 <c>/api/v2/query</c> and returns the rows of every table (annotated CSV, header row).</summary>
    public async Task<IReadOnlyList<Dictionary<string, string>>> QueryFluxAsync(string flux, CancellationToken ct)
    {
        var json = JsonSerializer.Serialize(new FluxRequest(flux, "flux", new FluxDialect([], true)), FluxJson.Default.FluxRequest);
        var (status, body) = await SendOnceWithRetryAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, $"api/v2/query?org={Uri.EscapeDataString(_options.Org)}")
            {
                Content = new StringContent(json, Encoding.UTF8, "application/json"),
            };
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/csv"));
            return request;
        }, "query", ct).ConfigureAwait(false);
        if (status == HttpStatusCode.BadRequest) throw new InfluxException($"InfluxDB refused the Flux query: {ErrorText(body)}", transient: false, (int)status);
        ThrowUnlessSuccess(status, body, "query");
        return FluxCsv.Parse(body);
    }

    async Task<(HttpStatusCode Status, string Body)> SendOnceWithRetryAsync(Func<HttpRequestMessage> build, string what, CancellationToken ct)
    {
        var started = _time.GetTimestamp();
        var backoff = TimeSpan.FromMilliseconds(_options.InitialBackoffMs);
        for (var attempt = 1; ; attempt++)
        {
            string reason;
            TimeSpan? retryAfter = null;
            using var request = build();
            Authorize(request);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_options.RequestTimeoutMs);
            Interlocked.Increment(ref _requests);
            try
            {
                using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
                var body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
                var status = response.StatusCode;
                if ((int)status < 500 && status != HttpStatusCode.TooManyRequests) return (status, body);
                reason = $"{(int)status} {ErrorText(body)}";
                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                reason = $"no answer within {_options.RequestTimeoutMs} ms";
            }
            catch (HttpRequestException e)
            {
                reason = e.Message;
            }

            var delay = retryAfter is { } ra && ra > backoff ? ra : backoff;
            if (_time.GetElapsedTime(started) + delay > TimeSpan.FromMilliseconds(_options.RetryForMs))
            {
                throw new InfluxException($"InfluxDB {what} at {_options.Url} failed for {_options.RetryForMs} ms (Telemetry:Influx:RetryForMs); last: {reason}", transient: true);
            }
            InfluxLog.Retrying(_logger, reason, attempt, (long)delay.TotalMilliseconds);
            Interlocked.Increment(ref _retries);
            await Task.Delay(delay, _time, ct).ConfigureAwait(false);
            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, _options.MaxBackoffMs));
        }
    }

    void Authorize(HttpRequestMessage request)
    {
        if (_options.Token.Length > 0)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Token", _options.Token);
        }
        else if (_options.Username.Length > 0)
        {
            var credentials = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_options.Username}:{_options.Password}"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", credentials);
        }
    }

    void ThrowUnlessSuccess(HttpStatusCode status, string body, string what)
    {
        if ((int)status is >= 200 and < 300) return;
        var hint = status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
            ? _options.Version == 1 ? " (check Telemetry:Influx:Username/Password or Token)" : " (check Telemetry:Influx:Token and its permissions on the bucket)"
            : string.Empty;
        throw new InfluxException($"InfluxDB refused the {what} with {(int)status} {status}{hint}: {ErrorText(body)}", transient: false, (int)status);
    }

    /// <summary>The "error"/"message" of a JSON error body, else the body itself (shortened).</summary>
    static string ErrorText(string body)
    {
        if (body.Length > 0 && body[0] == '{')
        {
            try
            {
                using var document = JsonDocument.Parse(body);
                if (document.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String) return e.GetString()!;
                if (document.RootElement.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String) return m.GetString()!;
            }
            catch (JsonException)
            {
                // not JSON after all
            }
        }
        return body.Length > 500 ? body[..500] + "…" : body;
    }

    static byte[] Compress(ReadOnlySpan<byte> data)
    {
        using var output = new MemoryStream(data.Length / 4 + 64);
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(data);
        return output.ToArray();
    }

    public void Dispose() => _http.Dispose();
}
