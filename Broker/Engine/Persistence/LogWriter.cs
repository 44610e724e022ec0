using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// Writes the log from one background thread with group commit: every record appended while a write or fsync runs
/// goes into the next one. It owns the durable position: a position is durable only once the write that holds it
/// returned (and, under <see cref="DurabilityPolicy.Fsync"/>, its fsync); after the first failed write (a full disk)
/// the writer stays failed and no later position is ever durable, so nothing the log does not hold is acknowledged.
/// Compaction runs on this thread between writes (the hook given to <see cref="Start"/>), so nothing is written to the
/// log file while it does, and it switches the log to the new file through <see cref="SwitchTo"/>.
/// </summary>
internal sealed class LogWriter : IAsyncDisposable
{
    readonly StoreOptions _options;
    readonly ILogger _logger;
    readonly Lock _lock = new();
    readonly SemaphoreSlim _flushSignal = new(0);
    readonly List<(long Position, TaskCompletionSource Done)> _waiters = new();
    readonly Thread _thread;
    Action? _afterFlush;

    // _pending and _appended change under _lock; _writing, Generation and FileLength only on the writer thread
    MemoryStream _pending = new();
    MemoryStream _writing = new();
    FileStream _file;
    long _appended;
    long _durable;
    bool _closed;
    volatile bool _stopping;
    volatile Exception? _failure;
    int _signaled;

    /// <param name="file">The log opened for append, <paramref name="length"/> bytes long, all of it already durable.</param>
    public LogWriter(StoreOptions options, ILogger logger, FileStream file, long generation, long length)
    {
        _options = options;
        _logger = logger;
        _file = file;
        Generation = generation;
        FileLength = length;
        _thread = new Thread(FlushLoop) { IsBackground = true, Name = "iotrealtime-store" };
    }

    /// <summary>Generation of the log file in use; read and changed on the writer thread only.</summary>
    public long Generation { get; private set; }

    /// <summary>Bytes of the log file the OS confirmed written; read and changed on the writer thread only.</summary>
    public long FileLength { get; private set; }

    /// <summary>Told how long each write (with its fsync, under <see cref="DurabilityPolicy.Fsync"/>) took.</summary>
    public Action<TimeSpan>? LatencyObserver { get; set; }

    public bool Healthy => _failure is null;

    /// <summary>Starts the writer thread; <paramref name="afterFlush"/> runs on it after each write while the writer is healthy.</summary>
    public void Start(Action afterFlush)
    {
        _afterFlush = afterFlush;
        _thread.Start();
    }

    /// <summary>Position after the last record appended.</summary>
    public long Position
    {
        get
        {
            lock (_lock)
            {
                return _appended;
            }
        }
    }

    /// <summary>Frames <paramref name="record"/> into the next batch and wakes the writer thread; returns the position just after it.</summary>
    public long Append(ReadOnlySpan<byte> record) => Append(default, record);

    /// <summary>
    /// As <see cref="Append(ReadOnlySpan{byte})"/>, with <paramref name="first"/> (unless empty) framed just before
    /// <paramref name="record"/> in the same batch: one change written as two records takes one position.
    /// </summary>
    public long Append(ReadOnlySpan<byte> first, ReadOnlySpan<byte> record)
    {
        var firstCrc = first.IsEmpty ? 0 : Crc32.Compute(first);
        var crc = Crc32.Compute(record);
        long position;
        lock (_lock)
        {
            if (!first.IsEmpty)
            {
                LogFormat.WriteFrame(_pending, first, firstCrc);
            }
            LogFormat.WriteFrame(_pending, record, crc);
            position = ++_appended;
        }
        if (Interlocked.Exchange(ref _signaled, 1) == 0)
        {
            _flushSignal.Release();
        }
        return position;
    }

    /// <summary>
    /// The position reached and the bytes of it still waiting to be written: what a copy of the live state taken now
    /// covers. Only on the writer thread, so that no batch is taken between the mark and <see cref="SwitchTo"/>.
    /// </summary>
    public LogMark Mark()
    {
        Debug.Assert(Thread.CurrentThread == _thread, "the mark is taken between writes, on the writer thread");
        lock (_lock)
        {
            return new LogMark(_appended, _pending.Length);
        }
    }

    /// <summary>True only for positions whose write (and fsync) returned; after a failure, never for one past the last such write.</summary>
    public bool IsDurable(long position) => Volatile.Read(ref _durable) >= position;

    public ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken)
    {
        if (IsDurable(position))
        {
            return ValueTask.CompletedTask;
        }
        if (_failure is { } failure)
        {
            return ValueTask.FromException(CannotWrite(failure));
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waiters)
        {
            if (IsDurable(position))
            {
                return ValueTask.CompletedTask;
            }
            // the failure may have come (and FailWaiters run) since the check above: such a waiter would never complete
            if (_failure is { } failed)
            {
                return ValueTask.FromException(CannotWrite(failed));
            }
            _waiters.Add((position, done));
        }
        return new ValueTask(cancellationToken.CanBeCanceled ? done.Task.WaitAsync(cancellationToken) : done.Task);
    }

    void FlushLoop()
    {
        while (true)
        {
            _flushSignal.Wait();
            // read before the flush: once set, everything appended before DisposeAsync is in this flush's batch
            var stopping = _stopping;
            Volatile.Write(ref _signaled, 0);
            FlushOnce();
            if (stopping)
            {
                return;
            }
            if (_failure is null)
            {
                _afterFlush?.Invoke();
            }
        }
    }

    void FlushOnce()
    {
        long target;
        lock (_lock)
        {
            (_pending, _writing) = (_writing, _pending);
            target = _appended;
        }
        if (_failure is not null)
        {
            // a failed store writes nothing more, so nothing past its last confirmed write may become durable
            _writing.SetLength(0);
            return;
        }
        if (_writing.Length > 0)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                // _file has no buffer of its own (bufferSize 0): when Write returns, the whole batch reached the OS
                _file.Write(_writing.GetBuffer(), 0, (int)_writing.Length);
                _file.Flush(flushToDisk: _options.Durability == DurabilityPolicy.Fsync);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                _writing.SetLength(0);
                Fail(ex);
                CutUnconfirmedTail();
                return;
            }
            FileLength += _writing.Length;
            LatencyObserver?.Invoke(Stopwatch.GetElapsedTime(started));
        }
        _writing.SetLength(0);
        Volatile.Write(ref _durable, target);
        ReleaseWaiters(target);
    }

    /// <summary>
    /// Makes <paramref name="file"/> the log: generation <paramref name="generation"/>, already renamed into place,
    /// holding every change up to <paramref name="mark"/>. The batch bytes the mark covers are dropped (the new file
    /// holds them); those appended since go into it with the next write. Under <see cref="DurabilityPolicy.Fsync"/> the
    /// rename must survive a power loss before the new file's records count as durable: when the directory sync fails,
    /// the writer fails and this returns false. On the writer thread only.
    /// </summary>
    public bool SwitchTo(FileStream file, long generation, LogMark mark)
    {
        FileStream previous;
        lock (_lock)
        {
            if (_closed)
            {
                // closing gave up waiting for this thread and closed the log: the new file is whole, but not ours to use
                file.Dispose();
                return false;
            }
            DropPrefix(_pending, mark.PendingBytes);
            previous = _file;
            _file = file;
        }
        var previousPath = Path.Combine(_options.Directory, LogFormat.FileName(Generation));
        Generation = generation;
        FileLength = file.Length;
        previous.Dispose();
        if (_options.Durability == DurabilityPolicy.Fsync)
        {
            try
            {
                DirectorySync.Flush(_options.Directory);
            }
            catch (IOException ex)
            {
                Fail(ex);
                return false;
            }
        }
        LogFormat.TryDelete(previousPath);
        Volatile.Write(ref _durable, mark.Position);
        ReleaseWaiters(mark.Position);
        return true;
    }

    static void DropPrefix(MemoryStream batch, long bytes)
    {
        var rest = (int)(batch.Length - bytes);
        var buffer = batch.GetBuffer();
        Buffer.BlockCopy(buffer, (int)bytes, buffer, 0, rest);
        batch.SetLength(rest); // the position follows: the next record goes after the rest
    }

    /// <summary>Marks the writer failed for good: waiters fault now, later ones at once, and <c>_durable</c> stays where the last confirmed write left it.</summary>
    void Fail(Exception failure)
    {
        StoreLog.WriteFailed(_logger, _options.Directory, failure);
        _failure ??= failure;
        FailWaiters(failure);
    }

    /// <summary>
    /// A failed write may have left part of its batch in the file (a full disk takes what fits). Cutting it back to the
    /// last confirmed write keeps refused changes out of the next start; if even that fails, the start cuts the torn tail.
    /// </summary>
    void CutUnconfirmedTail()
    {
        try
        {
            _file.SetLength(FileLength);
            _file.Flush(flushToDisk: _options.Durability == DurabilityPolicy.Fsync);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            StoreLog.TailNotCut(_logger, _options.Directory, ex);
        }
    }

    static IOException CannotWrite(Exception failure) => new("The broker store cannot write.", failure);

    void ReleaseWaiters(long durable)
    {
        lock (_waiters)
        {
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Position <= durable)
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    void FailWaiters(Exception failure)
    {
        lock (_waiters)
        {
            foreach (var (_, done) in _waiters)
            {
                done.TrySetException(CannotWrite(failure));
            }
            _waiters.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        _flushSignal.Release();
        await Task.Run(() => _thread.Join(TimeSpan.FromSeconds(30))).ConfigureAwait(false);
        lock (_lock)
        {
            // the writer thread wrote (and synced) the last batch; _file buffers nothing, so closing it writes nothing more
            _closed = true;
            _file.Dispose();
        }
        // a change reported while the store closed is never written: its waiter must not hang
        FailWaiters(new ObjectDisposedException(nameof(EmbeddedBrokerStore)));
        _flushSignal.Dispose();
    }
}

/// <summary>A log position and how many bytes of the batch waiting to be written belong to the records up to it.</summary>
internal readonly record struct LogMark(long Position, long PendingBytes);
