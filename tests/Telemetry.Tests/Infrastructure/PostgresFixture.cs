namespace IotRealtime.Telemetry.Tests.Infrastructure;

/// <summary>One throwaway PostgreSQL cluster for a test collection; each test takes a database of its own.</summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    int _databases;

    public PostgresServer Server { get; private set; } = null!;

    public Task<string> NewDatabaseAsync() => Server.CreateDatabaseAsync($"telemetry_{Interlocked.Increment(ref _databases)}");

    public async Task InitializeAsync() => Server = await PostgresServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (Server is not null) await Server.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}
