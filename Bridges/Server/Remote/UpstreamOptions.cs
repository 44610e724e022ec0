namespace IotRealtime.Bridges.Remote;

/// <summary>The broker the standalone bridges read from ("Upstream" section of iotrealtime-bridges).</summary>
public sealed class UpstreamOptions
{
    public const string Section = "Upstream";

    public string Host { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 1883;

    public bool UseTls { get; set; }

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>Unset = iotrealtime-bridges-&lt;random&gt;, so two bridges processes never take over each other's session.</summary>
    public string? ClientId { get; set; }

    /// <summary>What the bridges subscribe to upstream; their history holds only these topics.</summary>
    public List<string> Filters { get; set; } = ["#"];

    public int KeepAliveSeconds { get; set; } = 30;

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Host)) yield return $"{Section}:Host must not be empty.";
        if (Port is < 1 or > 65535) yield return $"{Section}:Port must be 1..65535 (was {Port}).";
        if (Filters.Count == 0) yield return $"{Section}:Filters must name at least one topic filter (default #).";
        foreach (var filter in Filters)
        {
            if (!Broker.Engine.Routing.TopicValidation.IsValidTopicFilter(filter)) yield return $"{Section}:Filters: '{filter}' is not a valid MQTT topic filter.";
        }
        if (KeepAliveSeconds is < 1 or > 65535) yield return $"{Section}:KeepAliveSeconds must be 1..65535 (was {KeepAliveSeconds}).";
    }
}
