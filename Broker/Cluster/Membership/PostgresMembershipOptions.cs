using Npgsql;

namespace IotRealtime.Broker.Cluster.Membership;

/// <summary>Where the cluster's membership table lives: a PostgreSQL database shared by every node of the cluster.</summary>
public sealed class PostgresMembershipOptions
{
    /// <summary>The configuration key the connection string is bound from; errors name it so an operator knows what to fix.</summary>
    public const string ConnectionStringKey = "Cluster:ConnectionString";

    /// <summary>
    /// Npgsql connection string (<c>Host=db;Port=5432;Database=iot;Username=broker;Password=…</c>). Every node of one
    /// cluster points at the same database; a schema other than <c>public</c> is chosen with <c>Search Path=…</c>.
    /// </summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>
    /// Limit on each membership query. Orleans retries a failed membership write, so a short limit that fails fast
    /// beats a query that hangs past the failure-detection period.
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            yield return $"{ConnectionStringKey} must be set to the PostgreSQL connection string of the membership database (Host=…;Database=…;Username=…).";
        }
        else
        {
            string? error = null;
            try
            {
                var builder = new NpgsqlConnectionStringBuilder(ConnectionString);
                if (string.IsNullOrWhiteSpace(builder.Host)) error = "it names no Host";
            }
            catch (ArgumentException e)
            {
                error = e.Message;
            }
            if (error is not null) yield return $"{ConnectionStringKey} is not a valid PostgreSQL connection string: {error}.";
        }
        if (CommandTimeout < TimeSpan.FromSeconds(1) || CommandTimeout > TimeSpan.FromMinutes(10))
        {
            yield return $"The membership command timeout must be between 1 s and 10 min (was {CommandTimeout.TotalSeconds:0.###} s).";
        }
    }
}
