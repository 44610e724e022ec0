namespace IotRealtime.Broker.Cluster.Membership;

/// <summary>
/// The membership schema and every query on it. One version row per cluster id carries Orleans' table version and
/// its etag; one row per silo (address, port, generation) carries the entry and its own etag. Etags come from one
/// sequence, so an etag is never reused, not even after a cluster's rows are deleted and created again.
/// </summary>
static class MembershipSql
{
    public const string VersionTable = "iotrealtime_cluster_membership_version";
    public const string SiloTable = "iotrealtime_cluster_membership";

    // Two nodes starting at once would race on CREATE ... IF NOT EXISTS (a catalog unique violation): a transaction
    // advisory lock makes the creation one at a time. The key is an arbitrary constant of ours.
    public const string CreateSchema = $"""
        SELECT pg_advisory_xact_lock(7301994233);
        CREATE SEQUENCE IF NOT EXISTS iotrealtime_cluster_membership_etag;
        CREATE TABLE IF NOT EXISTS {VersionTable} (
            cluster_id text PRIMARY KEY,
            version integer NOT NULL,
            etag bigint NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS {SiloTable} (
            cluster_id text NOT NULL,
            address text NOT NULL,
            port integer NOT NULL,
            generation integer NOT NULL,
            silo_name text NOT NULL,
            host_name text NOT NULL,
            status text NOT NULL,
            proxy_port integer NOT NULL,
            role_name text,
            update_zone integer NOT NULL,
            fault_zone integer NOT NULL,
            start_time timestamptz NOT NULL,
            i_am_alive_time timestamptz NOT NULL,
            suspecting_silos text[],
            suspect_times bigint[],
            etag bigint NOT NULL,
            PRIMARY KEY (cluster_id, address, port, generation)
        );
        """;

    public const string InsertVersionRow = $"""
        INSERT INTO {VersionTable} (cluster_id, version, etag)
        VALUES (@cluster, 0, nextval('iotrealtime_cluster_membership_etag'))
        ON CONFLICT (cluster_id) DO NOTHING
        """;

    const string SiloColumns = """
        m.address, m.port, m.generation, m.silo_name, m.host_name, m.status, m.proxy_port, m.role_name,
        m.update_zone, m.fault_zone, m.start_time, m.i_am_alive_time, m.suspecting_silos, m.suspect_times, m.etag
        """;

    // One statement reads the version row and the members, so both come from one snapshot (the contract's "atomically").
    public const string ReadAll = $"""
        SELECT v.version, v.etag, {SiloColumns}
        FROM {VersionTable} v LEFT JOIN {SiloTable} m ON m.cluster_id = v.cluster_id
        WHERE v.cluster_id = @cluster
        """;

    public const string ReadRow = $"""
        SELECT v.version, v.etag, {SiloColumns}
        FROM {VersionTable} v LEFT JOIN {SiloTable} m ON m.cluster_id = v.cluster_id
            AND m.address = @address AND m.port = @port AND m.generation = @generation
        WHERE v.cluster_id = @cluster
        """;

    // The version row is bumped only when its etag still matches; the silo row is inserted only from that bump. A
    // result of 0 rows (stale version, or the silo already there) makes the caller roll the bump back.
    public const string InsertRow = $"""
        WITH bumped AS (
            UPDATE {VersionTable}
            SET version = @version, etag = nextval('iotrealtime_cluster_membership_etag'), changed_at = now()
            WHERE cluster_id = @cluster AND etag = @versionEtag
            RETURNING cluster_id
        )
        INSERT INTO {SiloTable} (cluster_id, address, port, generation, silo_name, host_name, status, proxy_port,
            role_name, update_zone, fault_zone, start_time, i_am_alive_time, suspecting_silos, suspect_times, etag)
        SELECT bumped.cluster_id, @address, @port, @generation, @siloName, @hostName, @status, @proxyPort,
            @roleName, @updateZone, @faultZone, @startTime, @iAmAliveTime, @suspectingSilos, @suspectTimes,
            nextval('iotrealtime_cluster_membership_etag')
        FROM bumped
        ON CONFLICT DO NOTHING
        """;

    // As InsertRow: the row is replaced only from a matching version bump and only while its own etag matches.
    public const string UpdateRow = $"""
        WITH bumped AS (
            UPDATE {VersionTable}
            SET version = @version, etag = nextval('iotrealtime_cluster_membership_etag'), changed_at = now()
            WHERE cluster_id = @cluster AND etag = @versionEtag
            RETURNING cluster_id
        )
        UPDATE {SiloTable} m
        SET silo_name = @siloName, host_name = @hostName, status = @status, proxy_port = @proxyPort,
            role_name = @roleName, update_zone = @updateZone, fault_zone = @faultZone, start_time = @startTime,
            i_am_alive_time = @iAmAliveTime, suspecting_silos = @suspectingSilos, suspect_times = @suspectTimes,
            etag = nextval('iotrealtime_cluster_membership_etag')
        FROM bumped
        WHERE m.cluster_id = bumped.cluster_id AND m.address = @address AND m.port = @port
            AND m.generation = @generation AND m.etag = @rowEtag
        """;

    // A dirty write of the alive time alone: no etag, no version (the contract's UpdateIAmAlive).
    public const string UpdateIAmAlive = $"""
        UPDATE {SiloTable} SET i_am_alive_time = @iAmAliveTime
        WHERE cluster_id = @cluster AND address = @address AND port = @port AND generation = @generation
        """;

    // Defunct: any status but Active whose last alive time is older than the date (Orleans keeps Active rows).
    public const string CleanupDefunct = $"""
        DELETE FROM {SiloTable}
        WHERE cluster_id = @cluster AND i_am_alive_time < @beforeDate AND status <> 'Active'
        """;

    // One command, one implicit transaction: the cluster's rows and its version row go together. The version row is
    // locked first, as the conditional writes lock it first, so the two cannot deadlock.
    public const string DeleteCluster = $"""
        DELETE FROM {VersionTable} WHERE cluster_id = @cluster;
        DELETE FROM {SiloTable} WHERE cluster_id = @cluster;
        """;
}
