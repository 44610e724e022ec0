using Npgsql;

namespace IotRealtime.Telemetry.Tests;

public sealed class PostgresServerTests
{
    [Fact]
    public async Task A_throwaway_cluster_serves_a_new_database_and_survives_a_restart()
    {
        await using var server = await PostgresServer.StartAsync();
        var connectionString = await server.CreateDatabaseAsync("probe");
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE t (v int); INSERT INTO t VALUES (42);", connection);
            await create.ExecuteNonQueryAsync();
        }
        NpgsqlConnection.ClearAllPools();
        await server.StopAsync();
        await server.StartAsync();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var read = new NpgsqlCommand("SELECT v FROM t", connection);
            Assert.Equal(42, await read.ExecuteScalarAsync());
        }
    }
}
