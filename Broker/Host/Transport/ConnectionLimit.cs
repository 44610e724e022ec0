using System.Text;
using IotRealtime.Broker.Host.Listeners;
using IotRealtime.Hosting.Limits;
using IotRealtime.Hosting.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// <c>Listeners:MaxConnections</c>: one count of open connections over every listener (the MQTT socket listener and
/// each Kestrel listener), taken at accept before a byte is read or a TLS handshake starts. Unset, the cap is the
/// process's open-file limit less a reserve (<see cref="OpenFileLimit"/>), so a flood never exhausts descriptors. A
/// connection over the cap is closed at once and counted per listener; the log gets at most one line per
/// <see cref="LogInterval"/> saying how many were refused, so a connect flood costs no line per socket (Kestrel's own
/// limit logs a warning for each).
/// </summary>
public sealed class ConnectionLimit : IMetricsSource
{
    public static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    /// <summary>The listener names counted (the transport names the host logs at start-up).</summary>
    public static readonly IReadOnlyList<string> Listeners = ["mqtt", "mqtts", "http", "https"];

    readonly long? _max;
    readonly ILogger<ConnectionLimit> _logger;
    readonly LogThrottle _throttle;
    readonly long[] _refused = new long[Listeners.Count];
    long _open;

    public ConnectionLimit(ListenerOptions options, TimeProvider time, ILogger<ConnectionLimit> logger)
        : this(options.MaxConnections, OpenFileLimit.Read(), time, logger)
    {
    }

    /// <param name="openFileLimit">The process's open-file limit; the cap when <paramref name="configured"/> is null (none when both are).</param>
    public ConnectionLimit(long? configured, long? openFileLimit, TimeProvider time, ILogger<ConnectionLimit> logger)
    {
        _max = configured ?? (openFileLimit is { } files ? OpenFileLimit.ConnectionCap(files) : null);
        _logger = logger;
        _throttle = new LogThrottle(LogInterval, time);
        if (openFileLimit is { } limit)
        {
            if (configured is null) HostLog.ConnectionCapFromOpenFiles(logger, _max!.Value, limit, OpenFileLimit.Reserve(limit));
            else if (configured > OpenFileLimit.ConnectionCap(limit)) HostLog.ConnectionCapAboveOpenFiles(logger, configured.Value, limit, OpenFileLimit.ConnectionCap(limit));
        }
    }

    /// <summary>The cap in force; null = none.</summary>
    public long? Max => _max;

    /// <summary>Connections open on every listener together.</summary>
    public long Open => Interlocked.Read(ref _open);

    /// <summary>Connections closed at accept on <paramref name="listener"/> because the cap was reached.</summary>
    public long Refused(string listener) => Interlocked.Read(ref _refused[IndexOf(listener)]);

    /// <summary>Takes a slot for a connection just accepted on <paramref name="listener"/>; false (counted, maybe logged) when the cap is reached.</summary>
    public bool TryAcquire(string listener)
    {
        var open = Interlocked.Increment(ref _open);
        if (_max is not { } max || open <= max) return true;
        Interlocked.Decrement(ref _open);
        Interlocked.Increment(ref _refused[IndexOf(listener)]);
        if (_throttle.Count(out var count)) HostLog.ConnectionsRefusedAtCap(_logger, count, max);
        return false;
    }

    public void Release() => Interlocked.Decrement(ref _open);

    /// <summary>Kestrel connection middleware for <paramref name="listener"/>: first in its pipeline, so a refused connection costs no TLS handshake.</summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware(string listener) => next => async connection =>
    {
        // returning without calling next closes the connection (FIN), as Kestrel's own limit does
        if (!TryAcquire(listener)) return;
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            Release();
        }
    };

    public void WriteMetrics(StringBuilder w)
    {
        PrometheusText.Family(w, "iotrealtime_listener_connections", "gauge", "Open connections over every listener (what Listeners:MaxConnections caps).", Open);
        if (_max is { } max) PrometheusText.Family(w, "iotrealtime_listener_connections_max", "gauge", "The cap on open connections (Listeners:MaxConnections, or the open-file limit less a reserve).", max);
        PrometheusText.Header(w, "iotrealtime_listener_connections_refused_total", "counter", "Connections closed at accept because Listeners:MaxConnections was reached, by listener.");
        foreach (var listener in Listeners) PrometheusText.Sample(w, "iotrealtime_listener_connections_refused_total", "listener", listener, Refused(listener));
    }

    static int IndexOf(string listener)
    {
        for (var i = 0; i < Listeners.Count; i++)
        {
            if (Listeners[i] == listener) return i;
        }
        throw new ArgumentOutOfRangeException(nameof(listener), listener, $"one of {string.Join(", ", Listeners)}");
    }
}
