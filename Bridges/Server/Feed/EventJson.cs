using System.Buffers;
using System.Globalization;
using System.Text.Json;
using IotRealtime.Broker.Engine.Operations;

namespace IotRealtime.Bridges.Feed;

/// <summary>The JSON of gap and presence events, shared by SSE and the WebSocket.</summary>
static class EventJson
{
    public static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Presence kinds the bridges forward: a client came or went (a will, or a takeover that leaves it online, is not sent).</summary>
    public static string? PresenceKind(PresenceEvent e) => e.Kind switch
    {
        PresenceEventKind.Connected => "connected",
        PresenceEventKind.Disconnected when e.TakenOver != true => "disconnected",
        _ => null,
    };

    public static void WriteGapFields(Utf8JsonWriter json, HistoryGap gap)
    {
        json.WriteString("reason", gap.Reason);
        WriteStringOrNull(json, "requested", gap.Requested);
        WriteStringOrNull(json, "resumedFrom", gap.ResumedFrom);
        json.WriteString("advice", gap.Advice);
    }

    public static void WritePresenceObject(Utf8JsonWriter json, PresenceEvent e)
    {
        json.WriteStartObject();
        json.WriteString("clientId", e.ClientId);
        json.WriteString("kind", PresenceKind(e));
        json.WriteString("at", Timestamp(e.At));
        if (e.Username is { } user) json.WriteString("username", user);
        if (e.Transport is { } transport) json.WriteString("transport", transport);
        json.WriteEndObject();
    }

    public static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null) json.WriteNull(name);
        else json.WriteString(name, value);
    }

    public static HistoryGap OverflowGap(string? requested, string? resumedFrom) => new(GapReason.QueueOverflow, requested, resumedFrom,
        "this client read too slowly and messages were dropped: refetch current state, or subscribe to fewer topics");

    public static void WriteUtf8(IBufferWriter<byte> writer, string text)
    {
        System.Text.EncodingExtensions.GetBytes(System.Text.Encoding.UTF8, text.AsSpan(), writer);
    }
}
