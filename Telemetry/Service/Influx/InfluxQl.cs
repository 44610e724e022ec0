using System.Text;
using System.Text.Json;

namespace IotRealtime.Telemetry.Influx;

/// <summary>Quoting for InfluxQL (v1 queries) and Flux (v2 queries), and the rows of a v1 JSON answer.</summary>
public static class InfluxQl
{
    /// <summary>A double-quoted InfluxQL identifier.</summary>
    public static string Identifier(string name) => "\"" + name.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>A single-quoted InfluxQL string literal.</summary>
    public static string Literal(string value) => "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";

    /// <summary>A double-quoted Flux string literal (backslash, quote and string interpolation <c>${</c> escaped).</summary>
    public static string FluxString(string value)
    {
        var b = new StringBuilder(value.Length + 2).Append('"');
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is '\\' or '"' || (c == '$' && i + 1 < value.Length && value[i + 1] == '{')) b.Append('\\');
            b.Append(c);
        }
        return b.Append('"').ToString();
    }

    /// <summary>Every row of every series of the first statement, tags included, as column → value.</summary>
    public static IEnumerable<Dictionary<string, JsonElement>> Rows(JsonDocument answer)
    {
        var result = answer.RootElement.GetProperty("results")[0];
        if (!result.TryGetProperty("series", out var series)) yield break;
        foreach (var s in series.EnumerateArray())
        {
            var columns = s.GetProperty("columns").EnumerateArray().Select(c => c.GetString() ?? string.Empty).ToArray();
            var tags = s.TryGetProperty("tags", out var t) ? t.EnumerateObject().ToDictionary(p => p.Name, p => p.Value) : [];
            if (!s.TryGetProperty("values", out var values)) continue;
            foreach (var v in values.EnumerateArray())
            {
                var row = new Dictionary<string, JsonElement>(tags);
                var i = 0;
                foreach (var cell in v.EnumerateArray()) row[columns[i++]] = cell;
                yield return row;
            }
        }
    }
}
