using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace IotRealtime.Bridges;

static class BridgeHttp
{
    /// <summary>Answers <c>{"error": "…"}</c> with <paramref name="status"/>.</summary>
    public static async Task Error(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(message.Length + 16);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("error", message);
            json.WriteEndObject();
        }
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
    }
}
