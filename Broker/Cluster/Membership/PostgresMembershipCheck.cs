using System.Net.Sockets;
using Npgsql;

namespace IotRealtime.Broker.Cluster.Membership;

/// <summary>
/// The start-up check of the membership database, and the translation of what Npgsql throws into a
/// <see cref="PostgresMembershipException"/> that says what is wrong and names <c>Cluster:ConnectionString</c>.
/// </summary>
public static class PostgresMembershipCheck
{
    /// <summary>
    /// Validates the options and opens one connection; throws <see cref="PostgresMembershipException"/> when the
    /// connection string is invalid, the server cannot be reached or refuses the credentials or the database.
    /// The silo's own start runs the same check (in <see cref="PostgresMembershipTable.InitializeMembershipTable"/>).
    /// </summary>
    public static async Task VerifyAsync(PostgresMembershipOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ThrowIfInvalid(options);
        await using var dataSource = NpgsqlDataSource.Create(options.ConnectionString);
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("SELECT 1", connection) { CommandTimeout = Seconds(options.CommandTimeout) };
            await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw Translate(e, options.ConnectionString);
        }
    }

    internal static void ThrowIfInvalid(PostgresMembershipOptions options)
    {
        var errors = options.Validate().ToList();
        if (errors.Count > 0) throw new PostgresMembershipException(string.Join(" ", errors));
    }

    internal static int Seconds(TimeSpan timeout) => (int)Math.Ceiling(timeout.TotalSeconds);

    internal static PostgresMembershipException Translate(NpgsqlException exception, string connectionString)
    {
        var target = Describe(connectionString);
        var key = PostgresMembershipOptions.ConnectionStringKey;
        var message = exception switch
        {
            PostgresException { SqlState: "28P01" or "28000" } p =>
                $"{key}: PostgreSQL at {target} refused the credentials: {p.MessageText}",
            PostgresException { SqlState: "3D000" } p =>
                $"{key}: the database named in it does not exist at {target}: {p.MessageText}",
            PostgresException { SqlState: "42501" } p =>
                $"{key}: the user may not create or use the membership tables at {target}: {p.MessageText}",
            PostgresException p =>
                $"{key}: PostgreSQL at {target} failed the membership set-up: {p.SqlState} {p.MessageText}",
            _ when exception.InnerException is SocketException or TimeoutException =>
                $"{key}: cannot reach PostgreSQL at {target}: {exception.InnerException.Message}",
            _ => $"{key}: cannot use PostgreSQL at {target}: {exception.Message}",
        };
        return new PostgresMembershipException(message, exception);
    }

    // Host, port, database and user: enough to find the mistake, and never the password.
    static string Describe(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{builder.Host}:{builder.Port} (database '{builder.Database ?? builder.Username}', user '{builder.Username}')";
    }
}
