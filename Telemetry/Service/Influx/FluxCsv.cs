using System.Text;
using System.Text.Json.Serialization;

namespace IotRealtime.Telemetry.Influx;

record FluxDialect([property: JsonPropertyName("annotations")] string[] Annotations, [property: JsonPropertyName("header")] bool Header);

record FluxRequest([property: JsonPropertyName("query")] string Query, [property: JsonPropertyName("type")] string Type, [property: JsonPropertyName("dialect")] FluxDialect Dialect);

[JsonSerializable(typeof(FluxRequest))]
partial class FluxJson : JsonSerializerContext;

/// <summary>
/// The CSV InfluxDB 2.x answers Flux queries with (RFC 4180 quoting; no annotations; one header row per table, tables
/// separated by an empty line).
/// </summary>
public static class FluxCsv
{
    public static IReadOnlyList<Dictionary<string, string>> Parse(string csv)
    {
        var rows = new List<Dictionary<string, string>>();
        string[]? header = null;
        foreach (var record in Records(csv))
        {
            if (record.Count == 0 || record.All(f => f.Length == 0))
            {
                header = null; // an empty line: the next table brings its own header
                continue;
            }
            if (record[0].StartsWith('#')) continue; // annotation rows, if a server sends them anyway
            if (header is null)
            {
                header = [.. record];
                continue;
            }
            var row = new Dictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < header.Length && i < record.Count; i++)
            {
                if (header[i].Length > 0) row[header[i]] = record[i];
            }
            rows.Add(row);
        }
        return rows;
    }

    static IEnumerable<List<string>> Records(string csv)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < csv.Length; i++)
        {
            var c = csv[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < csv.Length && csv[i + 1] == '"')
                    {
                        field.Append('"');
                        i++;
                    }
                    else
                    {
                        quoted = false;
                    }
                }
                else
                {
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"':
                    quoted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    break;
                case '\r':
                    break;
                case '\n':
                    fields.Add(field.ToString());
                    field.Clear();
                    yield return fields;
                    fields = [];
                    break;
                default:
                    field.Append(c);
                    break;
            }
        }
        if (field.Length > 0 || fields.Count > 0)
        {
            fields.Add(field.ToString());
            yield return fields;
        }
    }
}
