using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Host.Transport;

/// <summary>
/// One thread that waits for MQTT sockets to become readable (one epoll set) and runs each reader's receive, and the
/// engine's handling of what it received, right there, one socket after another. Everything read from plain MQTT/TCP
/// connections is therefore handled in the order it was read from the kernel: a SUBSCRIBE read before another client's
/// PUBLISH is in effect when that PUBLISH is routed (what a single-threaded broker gives, and clients rely on). Routing
/// hands deliveries to writers on the thread pool, so the work that grows with fan-out runs in parallel. Sockets are
/// armed one-shot: a socket is reported once per wait of its reader, never while its data is being handled.
/// </summary>
internal sealed class ReadinessLoop : IDisposable
{
    const int MaxEvents = 256;
    const int WaitTimeoutMs = 250;

    readonly int _epoll;
    readonly Thread _thread;
    readonly Lock _slotsLock = new();
    SocketPipeReader?[] _readers = new SocketPipeReader?[256];
    uint[] _generations = new uint[256];
    readonly Stack<int> _free = new();
    int _nextSlot;
    volatile bool _stopping;

    readonly ILogger _logger;

    public ReadinessLoop(ILogger logger)
    {
        _logger = logger;
        _epoll = Epoll.Create();
        _thread = new Thread(Run) { IsBackground = true, Name = "iotrealtime-mqtt-read" };
        _thread.Start();
    }

    /// <summary>A key naming <paramref name="reader"/> in epoll events: its slot and the slot's generation, so an event for a reader already gone is told apart.</summary>
    public ulong Register(SocketPipeReader reader)
    {
        lock (_slotsLock)
        {
            if (!_free.TryPop(out var slot))
            {
                slot = _nextSlot++;
                if (slot == _readers.Length)
                {
                    Array.Resize(ref _readers, slot * 2);
                    Array.Resize(ref _generations, slot * 2);
                }
            }
            _readers[slot] = reader;
            return ((ulong)_generations[slot] << 32) | (uint)slot;
        }
    }

    /// <summary>Reports the socket once when it is readable (or closed); <paramref name="first"/> adds it to the set.</summary>
    public int Arm(int fd, ulong key, bool first) => Epoll.Arm(_epoll, fd, Epoll.In | Epoll.RdHup | Epoll.OneShot, key, first);

    /// <summary>Takes the socket out of the set (before it is closed) and frees its slot; a late event for it is ignored.</summary>
    public void Unregister(int fd, ulong key, bool added)
    {
        if (added)
        {
            Epoll.Remove(_epoll, fd);
        }
        var slot = (int)(uint)key;
        lock (_slotsLock)
        {
            if (_generations[slot] == (uint)(key >> 32))
            {
                _readers[slot] = null;
                _generations[slot]++;
                _free.Push(slot);
            }
        }
    }

    void Run()
    {
        var events = GC.AllocateArray<byte>(MaxEvents * Epoll.EventSize, pinned: true);
        while (!_stopping)
        {
            var count = Epoll.Wait(_epoll, events, WaitTimeoutMs);
            for (var i = 0; i < count; i++)
            {
                var (_, key) = Epoll.Read(events, i);
                SocketPipeReader? reader;
                var slot = (int)(uint)key;
                lock (_slotsLock)
                {
                    reader = slot < _nextSlot && _generations[slot] == (uint)(key >> 32) ? _readers[slot] : null;
                }
                try
                {
                    reader?.OnReadable();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    HostLog.ReadinessHandlerFailed(_logger, e);
                }
            }
        }
        Epoll.Close(_epoll);
    }

    /// <summary>Stops the thread (within a wait timeout); it closes the epoll set on its way out.</summary>
    public void Dispose()
    {
        _stopping = true;
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join(TimeSpan.FromSeconds(5));
        }
    }
}
