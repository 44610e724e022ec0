using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using Orleans;
using Orleans.Configuration;
using Orleans.Runtime;

namespace IotRealtime.Broker.Cluster.Membership;

/// <summary>
/// Orleans' membership table in PostgreSQL (schema and queries in <see cref="MembershipSql"/>). Insert and update are
/// conditional on the table version's etag (and the row's etag), each in one transaction, and answer false, not an
/// exception, when the condition fails; Orleans then reads the table again and retries.
/// </summary>
public sealed class PostgresMembershipTable : IMembershipTable, IAsyncDisposable, IDisposable
{
    // A version no row has: before the version row exists every conditional write fails instead of throwing.
    static readonly TableVersion NoVersion = new(0, "none");

    readonly PostgresMembershipOptions _options;
    readonly string _clusterId;
    readonly ILogger _logger;
    readonly int _commandTimeout;
    NpgsqlDataSource? _dataSource;

    public PostgresMembershipTable(
        IOptions<PostgresMembershipOptions> options,
        IOptions<ClusterOptions> clusterOptions,
        ILogger<PostgresMembershipTable> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(clusterOptions);
        _options = options.Value;
        _clusterId = clusterOptions.Value.ClusterId;
        _logger = logger;
        _commandTimeout = PostgresMembershipCheck.Seconds(_options.CommandTimeout);
    }

    NpgsqlDataSource DataSource =>
        _dataSource ?? throw new InvalidOperationException("InitializeMembershipTable has not been called.");

    /// <summary>Creates the tables if missing and, with <paramref name="tryInitTableVersion"/>, this cluster's version row.</summary>
    /// <exception cref="PostgresMembershipException">The connection string is invalid or the database unusable.</exception>
    public async Task InitializeMembershipTable(bool tryInitTableVersion)
    {
        try
        {
            PostgresMembershipCheck.ThrowIfInvalid(_options);
        }
        catch (PostgresMembershipException e)
        {
            PostgresMembershipLog.Unusable(_logger, e.Message, e);
            throw;
        }
        _dataSource ??= NpgsqlDataSource.Create(_options.ConnectionString);
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
            await using (var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false))
            {
                await using var create = Command(MembershipSql.CreateSchema, connection, transaction);
                await create.ExecuteNonQueryAsync().ConfigureAwait(false);
                await transaction.CommitAsync().ConfigureAwait(false);
            }
            if (tryInitTableVersion)
            {
                await using var insert = Command(MembershipSql.InsertVersionRow, connection);
                insert.Parameters.AddWithValue("cluster", _clusterId);
                if (await insert.ExecuteNonQueryAsync().ConfigureAwait(false) == 1) PostgresMembershipLog.VersionRowCreated(_logger, _clusterId);
            }
            PostgresMembershipLog.Initialized(_logger, connection.Host + ":" + connection.Port.ToString(CultureInfo.InvariantCulture), _clusterId);
        }
        catch (NpgsqlException e)
        {
            var translated = PostgresMembershipCheck.Translate(e, _options.ConnectionString);
            PostgresMembershipLog.Unusable(_logger, translated.Message, e);
            throw translated;
        }
    }

    public async Task DeleteMembershipTableEntries(string clusterId)
    {
        await using var command = Command(MembershipSql.DeleteCluster);
        command.Parameters.AddWithValue("cluster", clusterId);
        var rows = await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        PostgresMembershipLog.ClusterDeleted(_logger, clusterId, rows);
    }

    public async Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate)
    {
        await using var command = Command(MembershipSql.CleanupDefunct);
        command.Parameters.AddWithValue("cluster", _clusterId);
        command.Parameters.AddWithValue("beforeDate", beforeDate.UtcDateTime);
        var rows = await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        if (rows > 0) PostgresMembershipLog.DefunctRemoved(_logger, _clusterId, rows, beforeDate);
    }

    public Task<MembershipTableData> ReadRow(SiloAddress key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return ReadAsync(MembershipSql.ReadRow, key);
    }

    public Task<MembershipTableData> ReadAll() => ReadAsync(MembershipSql.ReadAll, silo: null);

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(tableVersion);
        return ConditionalWriteAsync(MembershipSql.InsertRow, entry, tableVersion, rowEtag: null);
    }

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(tableVersion);
        if (!TryParseEtag(etag, out var rowEtag)) return Task.FromResult(false);
        return ConditionalWriteAsync(MembershipSql.UpdateRow, entry, tableVersion, rowEtag);
    }

    public async Task UpdateIAmAlive(MembershipEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await using var command = Command(MembershipSql.UpdateIAmAlive);
        AddKey(command.Parameters, entry.SiloAddress);
        command.Parameters.AddWithValue("iAmAliveTime", Utc(entry.IAmAliveTime));
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _dataSource?.DisposeAsync() ?? ValueTask.CompletedTask;

    public void Dispose() => _dataSource?.Dispose();

    async Task<bool> ConditionalWriteAsync(string sql, MembershipEntry entry, TableVersion tableVersion, long? rowEtag)
    {
        if (!TryParseEtag(tableVersion.VersionEtag, out var versionEtag)) return false;
        await using var connection = await DataSource.OpenConnectionAsync().ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync().ConfigureAwait(false);
        await using var command = Command(sql, connection, transaction);
        command.Parameters.AddWithValue("version", tableVersion.Version);
        command.Parameters.AddWithValue("versionEtag", versionEtag);
        if (rowEtag is { } etag) command.Parameters.AddWithValue("rowEtag", etag);
        AddEntry(command.Parameters, entry);
        // One row written means both the version bump and the silo row happened; anything else undoes the bump.
        if (await command.ExecuteNonQueryAsync().ConfigureAwait(false) == 1)
        {
            await transaction.CommitAsync().ConfigureAwait(false);
            return true;
        }
        await transaction.RollbackAsync().ConfigureAwait(false);
        PostgresMembershipLog.ConditionFailed(_logger, _clusterId, rowEtag is null ? "insert" : "update", entry.SiloAddress.ToString());
        return false;
    }

    async Task<MembershipTableData> ReadAsync(string sql, SiloAddress? silo)
    {
        await using var command = Command(sql);
        if (silo is null) command.Parameters.AddWithValue("cluster", _clusterId);
        else AddKey(command.Parameters, silo);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        TableVersion? version = null;
        var members = new List<Tuple<MembershipEntry, string>>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            version ??= new TableVersion(reader.GetInt32(0), reader.GetInt64(1).ToString(CultureInfo.InvariantCulture));
            if (!reader.IsDBNull(2)) members.Add(ReadEntry(reader));
        }
        return new MembershipTableData(members, version ?? NoVersion);
    }

    // Columns from index 2 on, in MembershipSql's SiloColumns order.
    static Tuple<MembershipEntry, string> ReadEntry(NpgsqlDataReader reader)
    {
        var endpoint = new IPEndPoint(IPAddress.Parse(reader.GetString(2)), reader.GetInt32(3));
        var entry = new MembershipEntry
        {
            SiloAddress = SiloAddress.New(endpoint, reader.GetInt32(4)),
            SiloName = reader.GetString(5),
            HostName = reader.GetString(6),
            Status = Enum.Parse<SiloStatus>(reader.GetString(7)),
            ProxyPort = reader.GetInt32(8),
            RoleName = reader.IsDBNull(9) ? null : reader.GetString(9),
            UpdateZone = reader.GetInt32(10),
            FaultZone = reader.GetInt32(11),
            StartTime = reader.GetFieldValue<DateTime>(12),
            IAmAliveTime = reader.GetFieldValue<DateTime>(13),
            SuspectTimes = ReadSuspectTimes(reader),
        };
        return Tuple.Create(entry, reader.GetInt64(16).ToString(CultureInfo.InvariantCulture));
    }

    static List<Tuple<SiloAddress, DateTime>>? ReadSuspectTimes(NpgsqlDataReader reader)
    {
        if (reader.IsDBNull(14)) return null;
        var silos = reader.GetFieldValue<string[]>(14);
        var ticks = reader.GetFieldValue<long[]>(15);
        var votes = new List<Tuple<SiloAddress, DateTime>>(silos.Length);
        for (var i = 0; i < silos.Length; i++)
        {
            votes.Add(Tuple.Create(SiloAddress.FromParsableString(silos[i]), new DateTime(ticks[i], DateTimeKind.Utc)));
        }
        return votes;
    }

    void AddKey(NpgsqlParameterCollection parameters, SiloAddress silo)
    {
        parameters.AddWithValue("cluster", _clusterId);
        parameters.AddWithValue("address", silo.Endpoint.Address.ToString());
        parameters.AddWithValue("port", silo.Endpoint.Port);
        parameters.AddWithValue("generation", silo.Generation);
    }

    void AddEntry(NpgsqlParameterCollection parameters, MembershipEntry entry)
    {
        AddKey(parameters, entry.SiloAddress);
        parameters.AddWithValue("siloName", entry.SiloName ?? string.Empty);
        parameters.AddWithValue("hostName", entry.HostName ?? string.Empty);
        parameters.AddWithValue("status", entry.Status.ToString());
        parameters.AddWithValue("proxyPort", entry.ProxyPort);
        parameters.Add(new NpgsqlParameter("roleName", NpgsqlDbType.Text) { Value = (object?)entry.RoleName ?? DBNull.Value });
        parameters.AddWithValue("updateZone", entry.UpdateZone);
        parameters.AddWithValue("faultZone", entry.FaultZone);
        parameters.AddWithValue("startTime", Utc(entry.StartTime));
        parameters.AddWithValue("iAmAliveTime", Utc(entry.IAmAliveTime));
        // Suspect times as UTC ticks, so a vote reads back exactly (timestamptz keeps microseconds only).
        var votes = entry.SuspectTimes;
        parameters.Add(new NpgsqlParameter("suspectingSilos", NpgsqlDbType.Array | NpgsqlDbType.Text)
        {
            Value = votes is null ? DBNull.Value : (object)votes.Select(v => v.Item1.ToParsableString()).ToArray(),
        });
        parameters.Add(new NpgsqlParameter("suspectTimes", NpgsqlDbType.Array | NpgsqlDbType.Bigint)
        {
            Value = votes is null ? DBNull.Value : (object)votes.Select(v => Utc(v.Item2).Ticks).ToArray(),
        });
    }

    NpgsqlCommand Command(string sql)
    {
        var command = DataSource.CreateCommand(sql);
        command.CommandTimeout = _commandTimeout;
        return command;
    }

    NpgsqlCommand Command(string sql, NpgsqlConnection connection, NpgsqlTransaction? transaction = null) =>
        new(sql, connection, transaction) { CommandTimeout = _commandTimeout };

    // Orleans' times are UTC, but a default or hand-made DateTime is Unspecified; Npgsql's timestamptz wants Utc.
    static DateTime Utc(DateTime time) => time.Kind switch
    {
        DateTimeKind.Local => time.ToUniversalTime(),
        DateTimeKind.Unspecified => DateTime.SpecifyKind(time, DateTimeKind.Utc),
        _ => time,
    };

    static bool TryParseEtag(string? etag, out long value) =>
        long.TryParse(etag, NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
}
