using System.Net;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// Section <c>Cluster</c>: several broker processes as one broker. Off by default; when off nothing of Orleans is
/// loaded or started. Holds no Orleans type, so the host can bind and validate it on every start.
/// </summary>
public sealed class BrokerClusterOptions
{
    public const string Section = "Cluster";

    public bool Enabled { get; set; }

    /// <summary>This node's name, unique in the cluster: letters, digits, '-' and '_'. Required when enabled.</summary>
    public string NodeId { get; set; } = string.Empty;

    /// <summary>Nodes join only a cluster of the same id.</summary>
    public string ClusterId { get; set; } = "iotrealtime";

    public ClusterMembershipKind Membership { get; set; } = ClusterMembershipKind.Development;

    /// <summary>Development membership: host:port of the primary node's silo; unset means this node is the primary.</summary>
    public string? PrimaryEndpoint { get; set; }

    /// <summary>Postgres membership: the Npgsql connection string of the membership database.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The address peers reach this node's silo on; it listens there too.</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";

    public int SiloPort { get; set; } = 11111;

    /// <summary>Messages queued for one peer before <see cref="PeerOverflowPolicy"/> applies: at 100 B each, about 20 MB, a few seconds of a busy node.</summary>
    public int PeerQueueMessages { get; set; } = 100_000;

    public PeerOverflowPolicy PeerOverflowPolicy { get; set; } = PeerOverflowPolicy.DropNew;

    /// <summary>Messages sent to a peer in one grain call at most.</summary>
    public int PeerBatchMessages { get; set; } = 256;

    public IPAddress ParsedAdvertisedAddress => IPAddress.Parse(AdvertisedAddress);

    /// <summary>The primary's silo endpoint: <see cref="PrimaryEndpoint"/>, or this node's own.</summary>
    public IPEndPoint ParsedPrimaryEndpoint => string.IsNullOrWhiteSpace(PrimaryEndpoint)
        ? new IPEndPoint(ParsedAdvertisedAddress, SiloPort)
        : ParseEndpoint(PrimaryEndpoint)!;

    static IPEndPoint? ParseEndpoint(string text)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return null;
        }
        var host = text[..colon].Trim('[', ']');
        if (IPAddress.TryParse(host, out var address))
        {
            return new IPEndPoint(address, port);
        }
        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }
        return null;
    }

    /// <summary>Each problem names its key; nothing is checked while the cluster is off.</summary>
    public IEnumerable<string> Validate()
    {
        if (!Enabled)
        {
            yield break;
        }
        if (string.IsNullOrEmpty(NodeId))
        {
            yield return $"{Section}:NodeId must be set when {Section}:Enabled is true (letters, digits, '-' and '_', unique in the cluster).";
        }
        else if (!IsName(NodeId))
        {
            yield return $"{Section}:NodeId: '{NodeId}' may hold only letters, digits, '-' and '_' (at most 64).";
        }
        if (!IsName(ClusterId))
        {
            yield return $"{Section}:ClusterId: '{ClusterId}' may hold only letters, digits, '-' and '_' (at most 64).";
        }
        if (!IPAddress.TryParse(AdvertisedAddress, out var advertised) || advertised.Equals(IPAddress.Any) || advertised.Equals(IPAddress.IPv6Any))
        {
            yield return $"{Section}:AdvertisedAddress: '{AdvertisedAddress}' must be an IP address peers can reach (not 0.0.0.0).";
        }
        if (SiloPort is < 1 or > 65535)
        {
            yield return $"{Section}:SiloPort must be between 1 and 65535 (got {SiloPort}).";
        }
        if (PeerQueueMessages < 1)
        {
            yield return $"{Section}:PeerQueueMessages must be at least 1 (got {PeerQueueMessages}).";
        }
        if (PeerBatchMessages is < 1 or > 65_536)
        {
            yield return $"{Section}:PeerBatchMessages must be between 1 and 65536 (got {PeerBatchMessages}).";
        }
        switch (Membership)
        {
            case ClusterMembershipKind.Development:
                if (!string.IsNullOrWhiteSpace(PrimaryEndpoint) && ParseEndpoint(PrimaryEndpoint) is null)
                {
                    yield return $"{Section}:PrimaryEndpoint: '{PrimaryEndpoint}' must be ip:port (or localhost:port) of the primary node's silo.";
                }
                break;
            case ClusterMembershipKind.Postgres:
                foreach (var error in new Membership.PostgresMembershipOptions { ConnectionString = ConnectionString ?? string.Empty }.Validate())
                {
                    yield return error;
                }
                break;
        }
    }

    static bool IsName(string value) =>
        value.Length is > 0 and <= 64 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}
