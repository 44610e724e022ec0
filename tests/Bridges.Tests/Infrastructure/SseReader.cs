using System.Net;
using System.Text;

namespace IotRealtime.Bridges.Tests.Infrastructure;

/// <summary>One server-sent event as a client parses it: the comment lines (": hb") come as events with <see cref="Comment"/> set.</summary>
public sealed record SseEvent(string? Id, string Event, string Data, int? Retry, string? Comment)
{
    public System.Text.Json.JsonElement Json => System.Text.Json.JsonDocument.Parse(Data).RootElement;
}

/// <summary>
/// Reads an SSE response event by event with the parsing rules of the HTML spec (fields id, event, data, retry; blank
/// line ends an event; lines starting with ':' are comments). Tracks the last id like EventSource does.
/// </summary>
public sealed class SseReader : IAsyncDisposable
{
    readonly HttpResponseMessage _response;
    readonly StreamReader _reader;
    readonly CancellationTokenSource _cts = new();

    SseReader(HttpResponseMessage response, Stream stream)
    {
        _response = response;
        _reader = new StreamReader(stream, Encoding.UTF8);
    }

    public HttpResponseMessage Response => _response;

    public HttpStatusCode StatusCode => _response.StatusCode;

    /// <summary>The id of the last event that had one (what EventSource sends back as Last-Event-ID).</summary>
    public string? LastEventId { get; private set; }

    /// <summary>Sends the request; a non-2xx answer is returned too (check <see cref="StatusCode"/>, read <see cref="ReadBodyAsync"/>).</summary>
    public static async Task<SseReader> OpenAsync(HttpClient client, string relativeUri, string? lastEventId = null, Version? version = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, relativeUri);
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (version is not null)
        {
            request.Version = version;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }
        if (lastEventId is not null) request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeouts.Default);
        return new SseReader(response, await response.Content.ReadAsStreamAsync());
    }

    public Task<string> ReadBodyAsync() => _reader.ReadToEndAsync().WaitAsync(Timeouts.Default);

    /// <summary>The next event or comment; null when the server ended the stream.</summary>
    public async Task<SseEvent?> ReadAsync(TimeSpan? timeout = null)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        cts.CancelAfter(timeout ?? Timeouts.Default);
        string? id = null, ev = null, comment = null;
        int? retry = null;
        var data = new StringBuilder();
        var any = false;
        while (true)
        {
            string? line;
            try
            {
                line = await _reader.ReadLineAsync(cts.Token);
            }
            catch (OperationCanceledException) when (!_cts.IsCancellationRequested)
            {
                throw new TimeoutException($"no SSE event within {(timeout ?? Timeouts.Default).TotalSeconds:0.#} s");
            }
            if (line is null) return any ? Build() : null;
            if (line.Length == 0)
            {
                if (any) return Build();
                continue;
            }
            any = true;
            if (line[0] == ':')
            {
                comment = line[1..].TrimStart();
                continue;
            }
            var colon = line.IndexOf(':');
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? "" : line[(colon + 1)..];
            if (value.StartsWith(' ')) value = value[1..];
            switch (field)
            {
                case "id": id = value; break;
                case "event": ev = value; break;
                case "data":
                    if (data.Length > 0) data.Append('\n');
                    data.Append(value);
                    break;
                case "retry": retry = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
            }
        }

        SseEvent Build()
        {
            if (id is not null) LastEventId = id;
            // an event without data is not dispatched (it may still set the last event id)
            return new SseEvent(id, data.Length == 0 ? "" : ev ?? "message", data.ToString(), retry, comment);
        }
    }

    /// <summary>The next event of one of <paramref name="kinds"/> (default message, gap, presence), skipping comments and retry-only events.</summary>
    public async Task<SseEvent> NextAsync(TimeSpan? timeout = null, params string[] kinds)
    {
        if (kinds.Length == 0) kinds = ["message", "gap", "presence"];
        var deadline = DateTime.UtcNow + (timeout ?? Timeouts.Default);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"no {string.Join("/", kinds)} event in time");
            var e = await ReadAsync(left) ?? throw new EndOfStreamException("the server ended the SSE stream");
            if (kinds.Contains(e.Event)) return e;
        }
    }

    /// <summary>Reads <paramref name="count"/> message/gap events.</summary>
    public async Task<List<SseEvent>> NextManyAsync(int count, TimeSpan? timeout = null)
    {
        var events = new List<SseEvent>(count);
        var deadline = DateTime.UtcNow + (timeout ?? Timeouts.Default);
        while (events.Count < count)
        {
            events.Add(await NextAsync(deadline - DateTime.UtcNow));
        }
        return events;
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _reader.Dispose();
        _response.Dispose();
        _cts.Dispose();
    }
}
