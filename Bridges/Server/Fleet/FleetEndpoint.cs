using System.Text.Json;
using IotRealtime.Bridges.Auth;
using IotRealtime.Bridges.Feed;
using Microsoft.AspNetCore.Http;

namespace IotRealtime.Bridges.Fleet;

/// <summary>GET /api/fleet: who is online and the broker's inbound message rate, sampled once a second.</summary>
sealed class FleetEndpoint : IAsyncDisposable
{
    readonly IBrokerLink _broker;
    readonly BridgeAuth _auth;
    readonly TimeProvider _time;
    readonly ITimer _timer;
    readonly Lock _lock = new();
    long _lastCount;
    long _lastTicks;
    double _rate;

    public FleetEndpoint(IBrokerLink broker, BridgeAuth auth, TimeProvider time)
    {
        _broker = broker;
        _auth = auth;
        _time = time;
        _lastCount = broker.MessagesReceived;
        _lastTicks = time.GetTimestamp();
        _timer = time.CreateTimer(static s => ((FleetEndpoint)s!).Sample(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public double MessagesPerSecond
    {
        get
        {
            lock (_lock) return _rate;
        }
    }

    void Sample()
    {
        var count = _broker.MessagesReceived;
        var ticks = _time.GetTimestamp();
        lock (_lock)
        {
            var seconds = _time.GetElapsedTime(_lastTicks, ticks).TotalSeconds;
            if (seconds > 0) _rate = Math.Round((count - _lastCount) / seconds, 1);
            _lastCount = count;
            _lastTicks = ticks;
        }
    }

    public async Task HandleAsync(HttpContext context)
    {
        if (_auth.Authenticate(context) is null)
        {
            await BridgeHttp.Error(context, StatusCodes.Status401Unauthorized, "a valid token is required: POST /api/token, then pass it as ?token= or Authorization: Bearer").ConfigureAwait(false);
            return;
        }
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        await using var json = new Utf8JsonWriter(context.Response.BodyWriter);
        json.WriteStartObject();
        json.WriteStartArray("online");
        foreach (var client in _broker.GetOnline().OrderBy(c => c.ClientId, StringComparer.Ordinal))
        {
            json.WriteStartObject();
            json.WriteString("clientId", client.ClientId);
            EventJson.WriteStringOrNull(json, "username", client.Username);
            json.WriteString("connectedAt", EventJson.Timestamp(client.ConnectedAt));
            EventJson.WriteStringOrNull(json, "transport", client.Transport);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNumber("messagesPerSecond", MessagesPerSecond);
        json.WriteNumber("messagesReceived", _broker.MessagesReceived);
        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _timer.DisposeAsync();
}
