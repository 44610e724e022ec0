using System.Buffers;
using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Cluster;
using IotRealtime.Broker.Engine.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;

namespace IotRealtime.Broker.Cluster;

/// <summary>
/// Client ids unique cluster-wide (<see cref="IClusterSessions"/>). Each id has a home node, by rendezvous hashing over
/// the active node ids, whose registry keeps id → owner node; a claim goes to the home, which takes the session from a
/// live owner elsewhere (its <see cref="MqttBroker.HandOver"/>) and returns the snapshot for <see cref="MqttBroker.Adopt"/>
/// here. Claims of one id are ordered at its home, so of two at once one is taken over by the other. An owner that has
/// left the membership is given up on. When homes move (membership changes), nodes re-register what they hold.
/// </summary>
internal sealed class SessionOwnership : IClusterSessions
{
    // a claim granted here waits this long for its session to be attached before a hand-over request gives up waiting
    static readonly TimeSpan AttachWait = TimeSpan.FromSeconds(5);
    // a claim whose home cannot be reached is tried this often, 250 ms, 500 ms … apart, before the CONNECT is refused
    const int ClaimAttempts = 4;
    static readonly TimeSpan ClaimRetryDelay = TimeSpan.FromMilliseconds(250);

    readonly IServiceProvider _services;
    readonly IGrainFactory _grains;
    readonly IClusterMembershipService _membership;
    readonly TimeProvider _time;
    // the ids this node is home to: id → owner node id (node ids are shared strings, so an entry costs the id and the slot)
    readonly Dictionary<string, string> _owners = new(StringComparer.Ordinal);
    // per-id gates, only while a call for the id is in progress at its home
    readonly Dictionary<string, Gate> _gates = new(StringComparer.Ordinal);
    // claims granted to this node whose session may not be attached yet: id → when granted
    readonly Dictionary<string, DateTimeOffset> _granted = new(StringComparer.Ordinal);
    MqttBroker? _broker;
    int _claims;

    public SessionOwnership(BrokerClusterOptions options, IServiceProvider services, IGrainFactory grains, IClusterMembershipService membership, TimeProvider time)
    {
        NodeId = string.Intern(options.NodeId);
        _services = services;
        _grains = grains;
        _membership = membership;
        _time = time;
    }

    public string NodeId { get; }

    /// <summary>The ids this node is home to now.</summary>
    public int RegisteredCount
    {
        get
        {
            lock (_owners)
            {
                return _owners.Count;
            }
        }
    }

    /// <summary>The owner this node, as the id's home, records for <paramref name="clientId"/>; null when none.</summary>
    public string? OwnerOf(string clientId)
    {
        lock (_owners)
        {
            return _owners.GetValueOrDefault(clientId);
        }
    }

    MqttBroker Broker => _broker ??= _services.GetRequiredService<MqttBroker>();

    // ---------------------------------------------------------------- engine side

    public async ValueTask ClaimAsync(string clientId, bool cleanStart, CancellationToken cancellationToken)
    {
        lock (_granted)
        {
            var now = _time.GetUtcNow();
            _granted[clientId] = now;
            if (++_claims % 1024 == 0)
            {
                PruneGranted(now);
            }
        }
        byte[]? bytes;
        for (var attempt = 1; ; attempt++)
        {
            var home = Home(clientId, ActiveNodes());
            try
            {
                bytes = await _grains.GetGrain<IOwnershipGrain>(home).Claim(clientId, NodeId, cleanStart).WaitAsync(cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (Exception) when (attempt < ClaimAttempts && !cancellationToken.IsCancellationRequested)
            {
                // membership not settled yet (a node joining or leaving): the home may be placed nowhere for a moment
                await Task.Delay(ClaimRetryDelay * attempt, _time, cancellationToken).ConfigureAwait(false);
            }
        }
        if (bytes is not null)
        {
            Broker.Adopt(SessionSnapshot.Read(bytes));
        }
    }

    public void SessionEnded(string clientId)
    {
        if (Broker.HasSession(clientId))
        {
            return;
        }
        var home = Home(clientId, ActiveNodes());
        // fire and forget: a lost Forget leaves an entry whose owner has no session, which a later claim takes over harmlessly
        _ = _grains.GetGrain<IOwnershipGrain>(home).Forget(clientId, NodeId).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
    }

    // ---------------------------------------------------------------- at the home

    public async Task<byte[]?> ClaimAtHomeAsync(string clientId, string claimant, bool cleanStart)
    {
        var gate = Enter(clientId);
        await gate.Semaphore.WaitAsync().ConfigureAwait(false);
        try
        {
            string? owner;
            lock (_owners)
            {
                _owners.TryGetValue(clientId, out owner);
            }
            byte[]? snapshot = null;
            if (owner is not null && owner != claimant && IsActive(owner))
            {
                try
                {
                    snapshot = await _grains.GetGrain<IOwnershipGrain>(owner).Release(clientId, cleanStart).ConfigureAwait(false);
                }
                catch (Exception) when (!IsActive(owner))
                {
                    // the owner left while we asked: given up on, the claimant gets a new session
                }
            }
            lock (_owners)
            {
                _owners[clientId] = string.Intern(claimant);
            }
            return snapshot;
        }
        finally
        {
            Exit(clientId, gate);
        }
    }

    public async Task<bool> RegisterAtHomeAsync(string clientId, string node)
    {
        var gate = Enter(clientId);
        await gate.Semaphore.WaitAsync().ConfigureAwait(false);
        try
        {
            lock (_owners)
            {
                if (_owners.TryGetValue(clientId, out var owner) && owner != node && IsActive(owner))
                {
                    return false;
                }
                _owners[clientId] = string.Intern(node);
                return true;
            }
        }
        finally
        {
            Exit(clientId, gate);
        }
    }

    public async Task ForgetAtHomeAsync(string clientId, string node)
    {
        var gate = Enter(clientId);
        await gate.Semaphore.WaitAsync().ConfigureAwait(false);
        try
        {
            lock (_owners)
            {
                if (_owners.TryGetValue(clientId, out var owner) && owner == node)
                {
                    _owners.Remove(clientId);
                }
            }
        }
        finally
        {
            Exit(clientId, gate);
        }
    }

    // ---------------------------------------------------------------- at the owner

    public async Task<byte[]?> ReleaseAsync(string clientId, bool cleanStart)
    {
        // a claim granted here just before may not have attached its session yet: let it, so it is what moves
        while (!Broker.HasSession(clientId) && RecentlyGranted(clientId))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(5), _time).ConfigureAwait(false);
        }
        lock (_granted)
        {
            _granted.Remove(clientId);
        }
        var snapshot = Broker.HandOver(clientId, cleanStart);
        if (snapshot is null)
        {
            return null;
        }
        var buffer = new ArrayBufferWriter<byte>();
        snapshot.WriteTo(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    // under _granted's lock; amortized over claims, so entries live about AttachWait, not one per connection ever made
    void PruneGranted(DateTimeOffset now)
    {
        foreach (var (id, _) in _granted.Where(g => now - g.Value >= AttachWait).ToList())
        {
            _granted.Remove(id);
        }
    }

    bool RecentlyGranted(string clientId)
    {
        lock (_granted)
        {
            return _granted.TryGetValue(clientId, out var at) && _time.GetUtcNow() - at < AttachWait;
        }
    }

    // ---------------------------------------------------------------- membership

    /// <summary>
    /// Homes moved (or this node just started): drops the entries this node is no longer home to, and registers each session
    /// held here with its home; where another active node owns the id, this node's copy is stale and is dropped.
    /// </summary>
    public async Task ReconcileAsync(IReadOnlyList<string> active, CancellationToken cancellationToken)
    {
        lock (_owners)
        {
            foreach (var id in _owners.Keys.Where(id => Home(id, active) != NodeId).ToList())
            {
                _owners.Remove(id);
            }
            lock (_granted)
            {
                PruneGranted(_time.GetUtcNow());
            }
        }
        foreach (var session in Broker.GetSessions())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var id = session.ClientId;
            var kept = await _grains.GetGrain<IOwnershipGrain>(Home(id, active)).Register(id, NodeId).ConfigureAwait(false);
            if (!kept)
            {
                // another node owns it: this copy is stale, drop it without moving it anywhere (its delayed will goes with it)
                Broker.HandOver(id);
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    internal IReadOnlyList<string> ActiveNodes()
    {
        var nodes = new List<string>();
        foreach (var m in _membership.CurrentSnapshot.Members.Values)
        {
            if (m.Status == SiloStatus.Active && m.Name is { } name && !nodes.Contains(name))
            {
                nodes.Add(name);
            }
        }
        if (!nodes.Contains(NodeId))
        {
            nodes.Add(NodeId);
        }
        return nodes;
    }

    bool IsActive(string node) => node == NodeId || _membership.CurrentSnapshot.Members.Values.Any(m => m.Status == SiloStatus.Active && m.Name == node);

    /// <summary>The home of <paramref name="clientId"/>: the node with the highest hash of (node, id), so a membership change moves only the ids of the nodes that came or went.</summary>
    internal static string Home(string clientId, IReadOnlyList<string> nodes)
    {
        string best = nodes[0];
        ulong bestScore = 0;
        foreach (var node in nodes)
        {
            var score = Score(node, clientId);
            if (score > bestScore || (score == bestScore && string.CompareOrdinal(node, best) < 0))
            {
                best = node;
                bestScore = score;
            }
        }
        return best;
    }

    static ulong Score(string node, string clientId)
    {
        // FNV-1a 64 over the UTF-16 code units: stable across processes, unlike string.GetHashCode
        var hash = 14695981039346656037UL;
        foreach (var c in node)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }
        hash = (hash ^ 0xFFFF) * 1099511628211UL;
        foreach (var c in clientId)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }
        // finalizer (murmur3 fmix64) so ids differing in a last character spread over all nodes
        hash ^= hash >> 33;
        hash *= 0xff51afd7ed558ccdUL;
        hash ^= hash >> 33;
        hash *= 0xc4ceb9fe1a85ec53UL;
        hash ^= hash >> 33;
        return hash;
    }

    Gate Enter(string clientId)
    {
        lock (_gates)
        {
            if (!_gates.TryGetValue(clientId, out var gate))
            {
                gate = new Gate();
                _gates[clientId] = gate;
            }
            gate.Users++;
            return gate;
        }
    }

    void Exit(string clientId, Gate gate)
    {
        gate.Semaphore.Release();
        lock (_gates)
        {
            if (--gate.Users == 0)
            {
                _gates.Remove(clientId);
                gate.Semaphore.Dispose();
            }
        }
    }

    sealed class Gate
    {
        public SemaphoreSlim Semaphore { get; } = new(1, 1);
        public int Users { get; set; }
    }
}
