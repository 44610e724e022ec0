using System.Text.Json;
using System.Text.Json.Serialization;
using IotRealtime.Broker.Engine.Operations;

namespace IotRealtime.Broker.Host.Operations;

/// <summary>A retained message in the admin API: the payload as text when it is UTF-8, else base64, cut to a preview.</summary>
public sealed record RetainedMessageDto(string Topic, int Qos, int Size, DateTimeOffset ReceivedAt, DateTimeOffset? ExpiresAt, string? ContentType,
    string PayloadEncoding, string Payload, bool Truncated);

public sealed record RetainedClearedDto(int Removed);

/// <summary>POST /api/drain body; every field optional.</summary>
public sealed record DrainRequestDto(double? WindowSeconds, string? ServerReference);

public sealed record DrainStatusDto(string State, DateTimeOffset StartedAt, double WindowSeconds, DateTimeOffset EndsAt, string? ServerReference,
    int ConnectionsAtStart, int Remaining, string DisconnectReason);

public sealed record ErrorDto(string Error);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(IReadOnlyList<ClientSnapshot>))]
[JsonSerializable(typeof(ClientSnapshot))]
[JsonSerializable(typeof(IReadOnlyList<SessionSnapshot>))]
[JsonSerializable(typeof(SessionSnapshot))]
[JsonSerializable(typeof(List<RetainedMessageDto>))]
[JsonSerializable(typeof(RetainedClearedDto))]
[JsonSerializable(typeof(DrainRequestDto))]
[JsonSerializable(typeof(DrainStatusDto))]
[JsonSerializable(typeof(ErrorDto))]
internal sealed partial class AdminJsonContext : JsonSerializerContext;
