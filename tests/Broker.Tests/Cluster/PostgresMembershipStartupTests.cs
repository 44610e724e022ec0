using System.Net;
using System.Net.Sockets;
using IotRealtime.Broker.Cluster.Membership;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>A membership database that cannot be used stops the start with an error naming Cluster:ConnectionString.</summary>
public sealed class PostgresMembershipStartupTests(MembershipPostgresFixture postgres) : IClassFixture<MembershipPostgresFixture>
{
    [Theory]
    [InlineData("", "must be set")]
    [InlineData("   ", "must be set")]
    [InlineData("Host=127.0.0.1;Flavour=strawberry", "not a valid PostgreSQL connection string")]
    [InlineData("just some words", "not a valid PostgreSQL connection string")]
    [InlineData("Database=iot;Username=broker", "names no Host")]
    public async Task Invalid_connection_strings_are_refused_naming_the_key(string connectionString, string reason)
    {
        var options = new PostgresMembershipOptions { ConnectionString = connectionString };
        var error = Assert.Single(options.Validate());
        Assert.StartsWith("Cluster:ConnectionString", error, StringComparison.Ordinal);
        Assert.Contains(reason, error, StringComparison.Ordinal);

        var verify = await Assert.ThrowsAsync<PostgresMembershipException>(() => PostgresMembershipCheck.VerifyAsync(options));
        Assert.Contains(reason, verify.Message, StringComparison.Ordinal);
        await using var table = postgres.NewTable("c", connectionString);
        var init = await Assert.ThrowsAsync<PostgresMembershipException>(() => table.InitializeMembershipTable(true));
        Assert.Equal("Cluster:ConnectionString", init.ConfigurationKey);
    }

    [Fact]
    public void A_valid_connection_string_has_no_validation_errors() =>
        Assert.Empty(new PostgresMembershipOptions { ConnectionString = postgres.ConnectionString }.Validate());

    [Fact]
    public async Task An_unreachable_server_is_reported_with_the_key_and_without_the_password()
    {
        var connectionString = $"Host=127.0.0.1;Port={ClosedPort()};Username=broker;Password=hunter2-secret;Database=iot;Timeout=5";
        var verify = await Assert.ThrowsAsync<PostgresMembershipException>(
            () => PostgresMembershipCheck.VerifyAsync(new PostgresMembershipOptions { ConnectionString = connectionString }));
        await using var table = postgres.NewTable("c", connectionString);
        var init = await Assert.ThrowsAsync<PostgresMembershipException>(() => table.InitializeMembershipTable(true));
        foreach (var error in new[] { verify, init })
        {
            Assert.StartsWith("Cluster:ConnectionString: cannot reach PostgreSQL at 127.0.0.1:", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_unknown_user_is_reported_as_refused_credentials()
    {
        var connectionString = postgres.ConnectionString.Replace("Username=postgres", "Username=nobody_here", StringComparison.Ordinal);
        await using var table = postgres.NewTable("c", connectionString);
        var error = await Assert.ThrowsAsync<PostgresMembershipException>(() => table.InitializeMembershipTable(true));
        Assert.StartsWith("Cluster:ConnectionString: PostgreSQL at 127.0.0.1:", error.Message, StringComparison.Ordinal);
        Assert.Contains("refused the credentials", error.Message, StringComparison.Ordinal);
        Assert.Contains("nobody_here", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_database_is_reported_as_such()
    {
        var connectionString = postgres.Server.ConnectionString("no_such_database");
        var error = await Assert.ThrowsAsync<PostgresMembershipException>(
            () => PostgresMembershipCheck.VerifyAsync(new PostgresMembershipOptions { ConnectionString = connectionString }));
        Assert.Contains("Cluster:ConnectionString: the database named in it does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_check_passes_on_a_reachable_database() =>
        await PostgresMembershipCheck.VerifyAsync(new PostgresMembershipOptions { ConnectionString = postgres.ConnectionString });

    static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
