using System.Net;
using IotRealtime.Broker.Cluster.Membership;
using Orleans;
using Orleans.Runtime;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>Orleans' membership-table contract on a real PostgreSQL: each test under a cluster id of its own.</summary>
public sealed class PostgresMembershipTableTests(MembershipPostgresFixture postgres) : IClassFixture<MembershipPostgresFixture>
{
    static int s_generation;

    [Fact]
    public async Task Initialising_twice_keeps_the_table_and_its_version()
    {
        var clusterId = NewClusterId();
        await using var first = await OpenAsync(clusterId);
        var empty = await first.ReadAll();
        Assert.Empty(empty.Members);
        Assert.Equal(0, empty.Version.Version);

        Assert.True(await first.InsertRow(NewEntry(), empty.Version.Next()));
        var afterInsert = await first.ReadAll();

        await using var second = await OpenAsync(clusterId);
        await first.InitializeMembershipTable(true);
        var again = await second.ReadAll();
        Assert.Equal(afterInsert.Version, again.Version);
        Assert.Single(again.Members);
    }

    [Fact]
    public async Task Nodes_initialising_at_once_on_a_fresh_database_all_succeed_with_one_version_row()
    {
        var database = await postgres.NewDatabaseAsync();
        var clusterId = NewClusterId();
        var tables = Enumerable.Range(0, 4).Select(_ => postgres.NewTable(clusterId, database)).ToList();
        try
        {
            await Task.WhenAll(tables.Select(t => t.InitializeMembershipTable(true)));
            var versions = await Task.WhenAll(tables.Select(t => t.ReadAll()));
            Assert.All(versions, v => Assert.Equal(versions[0].Version, v.Version));
            Assert.Equal(0, versions[0].Version.Version);
            // One version row: a write with it succeeds once, and the others' copies are stale after it.
            Assert.True(await tables[0].InsertRow(NewEntry(), versions[1].Version.Next()));
            Assert.False(await tables[2].InsertRow(NewEntry(), versions[3].Version.Next()));
        }
        finally
        {
            foreach (var table in tables) await table.DisposeAsync();
        }
    }

    [Fact]
    public async Task Inserted_row_reads_back_with_the_new_table_version_from_ReadRow_and_ReadAll()
    {
        await using var table = await OpenAsync(NewClusterId());
        var before = await table.ReadAll();
        var entry = NewEntry();
        entry.RoleName = "broker";
        entry.UpdateZone = 3;
        entry.FaultZone = 7;

        Assert.True(await table.InsertRow(entry, before.Version.Next()));

        var row = await table.ReadRow(entry.SiloAddress);
        var all = await table.ReadAll();
        foreach (var data in new[] { row, all })
        {
            Assert.Equal(1, data.Version.Version);
            Assert.NotEqual(before.Version.VersionEtag, data.Version.VersionEtag);
            var (read, etag) = Assert.Single(data.Members);
            Assert.False(string.IsNullOrEmpty(etag));
            AssertSameEntry(entry, read);
        }
        Assert.Equal(row.Version, all.Version);
    }

    [Fact]
    public async Task ReadRow_of_an_unknown_silo_has_no_member_but_the_table_version()
    {
        await using var table = await OpenAsync(NewClusterId());
        var before = await table.ReadAll();
        Assert.True(await table.InsertRow(NewEntry(), before.Version.Next()));

        var data = await table.ReadRow(NewEntry().SiloAddress);
        Assert.Empty(data.Members);
        Assert.Equal(1, data.Version.Version);
    }

    [Fact]
    public async Task Insert_with_a_stale_table_version_fails_and_changes_nothing()
    {
        await using var table = await OpenAsync(NewClusterId());
        var stale = (await table.ReadAll()).Version;
        var first = NewEntry();
        Assert.True(await table.InsertRow(first, stale.Next()));
        var current = await table.ReadAll();

        Assert.False(await table.InsertRow(NewEntry(), stale.Next()));
        // The same silo again, even with the current version: a silo has one row.
        Assert.False(await table.InsertRow(first, current.Version.Next()));

        var after = await table.ReadAll();
        Assert.Equal(current.Version, after.Version);
        Assert.Equal(first.SiloAddress, Assert.Single(after.Members).Item1.SiloAddress);
    }

    [Fact]
    public async Task Update_needs_both_the_row_etag_and_the_table_version()
    {
        await using var table = await OpenAsync(NewClusterId());
        var entry = NewEntry();
        var stale = (await table.ReadAll()).Version;
        Assert.True(await table.InsertRow(entry, stale.Next()));
        var read = await table.ReadAll();
        var etag = read.Members[0].Item2;

        entry.Status = SiloStatus.Active;
        Assert.False(await table.UpdateRow(entry, etag, stale.Next()), "the table version read before the insert is stale");
        Assert.False(await table.UpdateRow(entry, "not-an-etag", read.Version.Next()));
        Assert.False(await table.UpdateRow(entry, etag + "1", read.Version.Next()));
        Assert.Equal(SiloStatus.Joining, (await table.ReadRow(entry.SiloAddress)).Members[0].Item1.Status);

        Assert.True(await table.UpdateRow(entry, etag, read.Version.Next()));
        var updated = await table.ReadRow(entry.SiloAddress);
        Assert.Equal(2, updated.Version.Version);
        Assert.Equal(SiloStatus.Active, updated.Members[0].Item1.Status);
        Assert.NotEqual(etag, updated.Members[0].Item2);

        // The old row etag is spent, even with the current table version.
        Assert.False(await table.UpdateRow(entry, etag, updated.Version.Next()));
        Assert.Equal(updated.Version, (await table.ReadAll()).Version);
    }

    [Fact]
    public async Task Of_concurrent_updates_from_one_read_exactly_one_wins()
    {
        await using var table = await OpenAsync(NewClusterId());
        var entry = NewEntry();
        Assert.True(await table.InsertRow(entry, (await table.ReadAll()).Version.Next()));
        var read = await table.ReadRow(entry.SiloAddress);
        var (row, etag) = read.Members[0];

        var writers = new[] { SiloStatus.Active, SiloStatus.ShuttingDown, SiloStatus.Stopping, SiloStatus.Dead, SiloStatus.Active, SiloStatus.Dead }
            .Select(status =>
            {
                var copy = Copy(row);
                copy.Status = status;
                copy.SiloName = "writer-" + Guid.NewGuid().ToString("N");
                return copy;
            })
            .ToList();
        var results = await Task.WhenAll(writers.Select(copy => Task.Run(() => table.UpdateRow(copy, etag, read.Version.Next()))));

        Assert.Single(results, won => won);
        var winner = writers[Array.IndexOf(results, true)];
        var after = await table.ReadRow(entry.SiloAddress);
        Assert.Equal(2, after.Version.Version);
        Assert.Equal(winner.SiloName, after.Members[0].Item1.SiloName);
        Assert.Equal(winner.Status, after.Members[0].Item1.Status);
    }

    [Fact]
    public async Task IAmAlive_changes_only_the_alive_time()
    {
        await using var table = await OpenAsync(NewClusterId());
        var entry = NewEntry();
        entry.AddSuspector(NewEntry().SiloAddress, Now().AddSeconds(-3));
        Assert.True(await table.InsertRow(entry, (await table.ReadAll()).Version.Next()));
        var before = await table.ReadRow(entry.SiloAddress);

        var alive = Now().AddSeconds(5);
        await table.UpdateIAmAlive(new MembershipEntry { SiloAddress = entry.SiloAddress, IAmAliveTime = alive });

        var after = await table.ReadRow(entry.SiloAddress);
        Assert.Equal(before.Version, after.Version);
        Assert.Equal(before.Members[0].Item2, after.Members[0].Item2);
        Assert.Equal(alive, after.Members[0].Item1.IAmAliveTime);
        entry.IAmAliveTime = alive;
        AssertSameEntry(entry, after.Members[0].Item1);
    }

    [Fact]
    public async Task Suspicions_read_back_exactly_in_order_and_death_is_recorded()
    {
        await using var table = await OpenAsync(NewClusterId());
        var entry = NewEntry();
        entry.Status = SiloStatus.Active;
        Assert.True(await table.InsertRow(entry, (await table.ReadAll()).Version.Next()));
        var (suspectorA, suspectorB) = (NewEntry().SiloAddress, NewEntry().SiloAddress);
        // Sub-microsecond ticks: a timestamp column would round these; the votes must come back as written.
        var firstVote = DateTime.UtcNow.AddTicks(7);
        var secondVote = firstVote.AddTicks(1_234_567);

        var read = await table.ReadRow(entry.SiloAddress);
        var suspected = Copy(read.Members[0].Item1);
        suspected.AddOrUpdateSuspector(suspectorA, firstVote, maxVotes: 2);
        Assert.True(await table.UpdateRow(suspected, read.Members[0].Item2, read.Version.Next()));

        read = await table.ReadRow(entry.SiloAddress);
        suspected = Copy(read.Members[0].Item1);
        Assert.Equal(new[] { Tuple.Create(suspectorA, firstVote) }, suspected.SuspectTimes!);
        suspected.AddOrUpdateSuspector(suspectorB, secondVote, maxVotes: 2);
        suspected.Status = SiloStatus.Dead;
        Assert.True(await table.UpdateRow(suspected, read.Members[0].Item2, read.Version.Next()));

        var dead = (await table.ReadAll()).Members.Single(m => m.Item1.SiloAddress.Equals(entry.SiloAddress)).Item1;
        Assert.Equal(SiloStatus.Dead, dead.Status);
        Assert.Equal(new[] { Tuple.Create(suspectorA, firstVote), Tuple.Create(suspectorB, secondVote) }, dead.SuspectTimes!);
        Assert.All(dead.SuspectTimes!, vote => Assert.Equal(DateTimeKind.Utc, vote.Item2.Kind));
    }

    [Fact]
    public async Task Cleanup_removes_only_this_clusters_non_active_entries_older_than_the_date()
    {
        var clusterId = NewClusterId();
        await using var table = await OpenAsync(clusterId);
        await using var other = await OpenAsync(NewClusterId());
        var old = Now().AddDays(-10);
        var oldDead = NewEntry(SiloStatus.Dead, old);
        var oldJoining = NewEntry(SiloStatus.Joining, old);
        var oldActive = NewEntry(SiloStatus.Active, old);
        var recentDead = NewEntry(SiloStatus.Dead, Now());
        var recentActive = NewEntry(SiloStatus.Active, Now());
        foreach (var entry in new[] { oldDead, oldJoining, oldActive, recentDead, recentActive })
        {
            Assert.True(await table.InsertRow(entry, (await table.ReadAll()).Version.Next()));
        }
        var otherOldDead = NewEntry(SiloStatus.Dead, old);
        Assert.True(await other.InsertRow(otherOldDead, (await other.ReadAll()).Version.Next()));

        await table.CleanupDefunctSiloEntries(Now().AddDays(-1));

        var left = (await table.ReadAll()).Members.Select(m => m.Item1.SiloAddress).ToHashSet();
        Assert.Equal(new[] { oldActive, recentDead, recentActive }.Select(e => e.SiloAddress).ToHashSet(), left);
        Assert.Equal(otherOldDead.SiloAddress, Assert.Single((await other.ReadAll()).Members).Item1.SiloAddress);
    }

    [Fact]
    public async Task Deleting_a_cluster_leaves_other_clusters_alone()
    {
        var clusterId = NewClusterId();
        await using var table = await OpenAsync(clusterId);
        await using var other = await OpenAsync(NewClusterId());
        Assert.True(await table.InsertRow(NewEntry(), (await table.ReadAll()).Version.Next()));
        Assert.True(await other.InsertRow(NewEntry(), (await other.ReadAll()).Version.Next()));
        var otherBefore = await other.ReadAll();

        await table.DeleteMembershipTableEntries(clusterId);

        var gone = await table.ReadAll();
        Assert.Empty(gone.Members);
        // No version row any more: a write fails (false, not an exception) until the table is initialised again.
        Assert.False(await table.InsertRow(NewEntry(), gone.Version.Next()));
        var otherAfter = await other.ReadAll();
        Assert.Equal(otherBefore.Version, otherAfter.Version);
        Assert.Single(otherAfter.Members);

        await table.InitializeMembershipTable(true);
        Assert.True(await table.InsertRow(NewEntry(), (await table.ReadAll()).Version.Next()));
    }

    async Task<PostgresMembershipTable> OpenAsync(string clusterId)
    {
        var table = postgres.NewTable(clusterId);
        await table.InitializeMembershipTable(true);
        return table;
    }

    static string NewClusterId() => "test-" + Guid.NewGuid().ToString("N");

    // Whole milliseconds: start and alive times are kept to the microsecond.
    static DateTime Now()
    {
        var now = DateTime.UtcNow;
        return new DateTime(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, DateTimeKind.Utc);
    }

    static MembershipEntry NewEntry(SiloStatus status = SiloStatus.Joining, DateTime? aliveAt = null)
    {
        var generation = Interlocked.Increment(ref s_generation);
        var address = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11000 + generation % 1000), generation);
        var time = aliveAt ?? Now();
        return new MembershipEntry
        {
            SiloAddress = address,
            Status = status,
            ProxyPort = 0,
            HostName = "host-" + generation,
            SiloName = "silo-" + generation,
            StartTime = time.AddSeconds(-1),
            IAmAliveTime = time,
        };
    }

    static MembershipEntry Copy(MembershipEntry e) => new()
    {
        SiloAddress = e.SiloAddress,
        Status = e.Status,
        SuspectTimes = e.SuspectTimes is null ? null : [.. e.SuspectTimes],
        ProxyPort = e.ProxyPort,
        HostName = e.HostName,
        SiloName = e.SiloName,
        RoleName = e.RoleName,
        UpdateZone = e.UpdateZone,
        FaultZone = e.FaultZone,
        StartTime = e.StartTime,
        IAmAliveTime = e.IAmAliveTime,
    };

    static void AssertSameEntry(MembershipEntry expected, MembershipEntry actual)
    {
        Assert.Equal(expected.SiloAddress, actual.SiloAddress);
        Assert.Equal(expected.Status, actual.Status);
        Assert.Equal(expected.ProxyPort, actual.ProxyPort);
        Assert.Equal(expected.HostName, actual.HostName);
        Assert.Equal(expected.SiloName, actual.SiloName);
        Assert.Equal(expected.RoleName, actual.RoleName);
        Assert.Equal(expected.UpdateZone, actual.UpdateZone);
        Assert.Equal(expected.FaultZone, actual.FaultZone);
        Assert.Equal(expected.StartTime, actual.StartTime);
        Assert.Equal(expected.IAmAliveTime, actual.IAmAliveTime);
        Assert.Equal(expected.SuspectTimes, actual.SuspectTimes);
        Assert.Equal(expected.ToFullString(), actual.ToFullString());
    }
}
