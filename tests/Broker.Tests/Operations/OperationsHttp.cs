using System.Net.Http.Headers;
using System.Text.Json;
using IotRealtime.Broker.Tests.Infrastructure;

namespace IotRealtime.Broker.Tests.Operations;

/// <summary>An HTTP client for a <see cref="TestBroker"/>'s operations endpoints, optionally with the admin bearer token.</summary>
internal static class OperationsHttp
{
    public static HttpClient Create(TestBroker broker, string? token = null)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{broker.HttpPort}/"), Timeout = TimeSpan.FromSeconds(20) };
        if (token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    public static async Task<JsonElement> GetJsonAsync(this HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static async Task<JsonElement?> FindClientAsync(this HttpClient http, string clientId)
    {
        var clients = await http.GetJsonAsync("api/clients");
        foreach (var client in clients.EnumerateArray())
        {
            if (client.GetProperty("clientId").GetString() == clientId) return client;
        }
        return null;
    }
}
