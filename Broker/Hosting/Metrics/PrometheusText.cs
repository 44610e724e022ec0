using System.Globalization;
using System.Text;

namespace IotRealtime.Hosting.Metrics;

/// <summary>Helpers that write the Prometheus text exposition format 0.0.4 (HELP and TYPE per family, then samples).</summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static void Family(StringBuilder w, string name, string type, string help, long value)
    {
        Header(w, name, type, help);
        w.Append(name).Append(' ').Append(Num(value)).Append('\n');
    }

    public static void Family(StringBuilder w, string name, string type, string help, double value)
    {
        Header(w, name, type, help);
        w.Append(name).Append(' ').Append(Num(value)).Append('\n');
    }

    public static void Header(StringBuilder w, string name, string type, string help) =>
        w.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    public static void Sample(StringBuilder w, string name, string label, string labelValue, long value) =>
        w.Append(name).Append('{').Append(label).Append("=\"").Append(Escape(labelValue)).Append("\"} ").Append(Num(value)).Append('\n');

    public static void Sample(StringBuilder w, string name, string label, string labelValue, double value) =>
        w.Append(name).Append('{').Append(label).Append("=\"").Append(Escape(labelValue)).Append("\"} ").Append(Num(value)).Append('\n');

    /// <summary>A sample with several labels, written in the order given.</summary>
    public static void Sample(StringBuilder w, string name, ReadOnlySpan<(string Label, string Value)> labels, double value)
    {
        w.Append(name).Append('{');
        for (var i = 0; i < labels.Length; i++)
        {
            if (i > 0) w.Append(',');
            w.Append(labels[i].Label).Append("=\"").Append(Escape(labels[i].Value)).Append('"');
        }
        w.Append("} ").Append(Num(value)).Append('\n');
    }

    public static void Histogram(StringBuilder w, string name, string help, LatencyHistogram histogram)
    {
        Header(w, name, "histogram", help);
        var (cumulative, sum) = histogram.Snapshot();
        for (var i = 0; i < LatencyHistogram.Bounds.Count; i++)
        {
            w.Append(name).Append("_bucket{le=\"").Append(LatencyHistogram.Bounds[i].ToString("R", CultureInfo.InvariantCulture)).Append("\"} ").Append(Num(cumulative[i])).Append('\n');
        }
        var count = cumulative[^1];
        w.Append(name).Append("_bucket{le=\"+Inf\"} ").Append(Num(count)).Append('\n');
        w.Append(name).Append("_sum ").Append(sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        w.Append(name).Append("_count ").Append(Num(count)).Append('\n');
    }

    public static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string Num(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    public static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
