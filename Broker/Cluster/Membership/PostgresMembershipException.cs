namespace IotRealtime.Broker.Cluster.Membership;

/// <summary>
/// The membership database cannot be used: the connection string is wrong, the server cannot be reached, the
/// credentials are refused or the tables cannot be created. The message names <see cref="ConfigurationKey"/>.
/// </summary>
public sealed class PostgresMembershipException : Exception
{
    public PostgresMembershipException(string message)
        : base(message)
    {
    }

    public PostgresMembershipException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public PostgresMembershipException()
        : base($"The membership database named by {PostgresMembershipOptions.ConnectionStringKey} cannot be used.")
    {
    }

    /// <summary>The configuration key to fix: <c>Cluster:ConnectionString</c>.</summary>
    public string ConfigurationKey => PostgresMembershipOptions.ConnectionStringKey;

    /// <summary>
    /// This exception inside <paramref name="exception"/>, or null: a silo's start wraps what the membership table
    /// throws (lifecycle and aggregate exceptions), and the host wants the cause to report it with its key.
    /// </summary>
    public static PostgresMembershipException? Find(Exception? exception)
    {
        for (var depth = 0; exception is not null && depth < 32; depth++)
        {
            if (exception is PostgresMembershipException found) return found;
            if (exception is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    if (Find(inner) is { } nested) return nested;
                }
                return null;
            }
            exception = exception.InnerException;
        }
        return null;
    }
}
