using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// The default store: an append-only log file under the data directory, written by one background thread with group
/// commit (every change reported while a write or fsync runs goes into the next one). Each record is framed with its
/// length and CRC-32, so at start-up a torn or corrupt tail is detected, reported and cut, never replayed. A mirror of
/// the live state is kept in memory; once the log outgrows <see cref="StoreOptions.CompactAfterBytes"/> and four times
/// its last rewrite, it is rewritten with only the live records (new file, fsync, atomic rename), so the store stays
/// bounded under churn. A position is durable only once the write that holds it returned (and, under
/// <see cref="DurabilityPolicy.Fsync"/>, its fsync): after the first failed write (a full disk) the store stays failed
/// and no later position is ever durable, so nothing the log does not hold is acknowledged.
/// </summary>
public sealed partial class EmbeddedBrokerStore : IBrokerStore
{
    static readonly byte[] Magic = "IOTRTLG1"u8.ToArray();
    const int HeaderLength = 8 + 8;
    const int FrameLength = 8;
    const int MaxRecordLength = 300 * 1024 * 1024;

    readonly StoreOptions _options;
    readonly ILogger _logger;
    readonly Lock _lock = new();
    readonly StoreModel _model;
    readonly MemoryStream _scratch = new();
    readonly BinaryWriter _writer;
    readonly SemaphoreSlim _flushSignal = new(0);
    readonly List<(long Position, TaskCompletionSource Done)> _waiters = new();
    readonly Thread _flushThread;

    MemoryStream _pending = new();
    MemoryStream _writing = new();
    FileStream _file;
    long _generation;
    long _fileLength;
    long _lastRewriteLength;
    long _appended;
    long _durable;
    long _nextMessageId = 1;
    volatile bool _stopping;
    volatile Exception? _failure;
    int _signaled;

    EmbeddedBrokerStore(StoreOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _writer = new BinaryWriter(_scratch, Encoding.UTF8, leaveOpen: true);
        _model = new StoreModel();
        Directory.CreateDirectory(options.Directory);
        _file = OpenLatest();
        _flushThread = new Thread(FlushLoop) { IsBackground = true, Name = "iotrealtime-store" };
        _flushThread.Start();
    }

    /// <summary>Opens (or creates) the store in <see cref="StoreOptions.Directory"/>, replaying and repairing the log.</summary>
    public static EmbeddedBrokerStore Open(StoreOptions options, ILoggerFactory loggerFactory) =>
        new(options, loggerFactory.CreateLogger<EmbeddedBrokerStore>());

    /// <summary>Told how long each log write (with its fsync, under <see cref="DurabilityPolicy.Fsync"/>) took; the broker feeds its metrics from it.</summary>
    public Action<TimeSpan>? WriteLatencyObserver { get; set; }

    public StoredState Load()
    {
        lock (_lock)
        {
            return _model.State;
        }
    }

    public bool Healthy => _failure is null;

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

    /// <summary>True only for positions whose write (and fsync) returned; after a failure, never for one past the last such write.</summary>
    public bool IsDurable(long position) => Volatile.Read(ref _durable) >= position;

    public ValueTask WaitDurableAsync(long position, CancellationToken cancellationToken = default)
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

    // ------------------------------------------------------------------ changes

    public long RetainSet(MqttMessage message) => Append(RecordType.RetainSet, w => StoreRecords.WriteMessage(w, message), m => m.RetainSet(message));

    public long RetainClear(string topic) => Append(RecordType.RetainClear, w => w.Write(topic), m => m.RetainClear(topic));

    public long SessionStarted(string clientId, uint expiryInterval, string? username, MqttMessage? will, uint willDelaySeconds) =>
        Append(RecordType.SessionStarted, w => WriteSessionStarted(w, clientId, expiryInterval, username, will, willDelaySeconds),
            m => m.SessionStarted(clientId, expiryInterval, username, will, willDelaySeconds));

    public long SessionOffline(string clientId, DateTimeOffset at, DateTimeOffset? willDueAt) =>
        Append(RecordType.SessionOffline, w => WriteSessionOffline(w, clientId, at, willDueAt), m => m.SessionOffline(clientId, at, willDueAt));

    public long SessionExpiryChanged(string clientId, uint expiryInterval) =>
        Append(RecordType.SessionExpiryChanged, w => { w.Write(clientId); w.Write(expiryInterval); }, m => m.SessionExpiryChanged(clientId, expiryInterval));

    public long SessionEnded(string clientId) => Append(RecordType.SessionEnded, w => w.Write(clientId), m => m.SessionEnded(clientId));

    public long Subscribed(string clientId, StoredSubscription subscription) =>
        Append(RecordType.Subscribed, w => { w.Write(clientId); StoreRecords.WriteSubscription(w, subscription); }, m => m.Subscribed(clientId, subscription));

    public long Unsubscribed(string clientId, string filter) =>
        Append(RecordType.Unsubscribed, w => { w.Write(clientId); w.Write(filter); }, m => m.Unsubscribed(clientId, filter));

    public long Enqueued(string clientId, StoredDelivery delivery)
    {
        lock (_lock)
        {
            if (delivery.Message.StoreId == 0)
            {
                // the message itself is written once, however many persistent sessions queue it
                delivery.Message.StoreId = _nextMessageId++;
                AppendLocked(RecordType.Message, w => { w.Write(delivery.Message.StoreId); StoreRecords.WriteMessage(w, delivery.Message); });
            }
            // the per-message records are written without delegates: they are the store's hot path
            BeginRecord(RecordType.Enqueued);
            _writer.Write(clientId);
            StoreRecords.WriteDelivery(_writer, delivery);
            EndRecord();
            _model.Enqueued(clientId, delivery);
            return Appended();
        }
    }

    public long InflightChanged(string clientId, long deliveryId, ushort packetId, StoredDeliveryState state)
    {
        lock (_lock)
        {
            BeginRecord(RecordType.InflightChanged);
            _writer.Write(clientId);
            _writer.Write(deliveryId);
            _writer.Write(packetId);
            _writer.Write((byte)state);
            EndRecord();
            _model.InflightChanged(clientId, deliveryId, packetId, state);
            return Appended();
        }
    }

    public long Completed(string clientId, long deliveryId)
    {
        lock (_lock)
        {
            BeginRecord(RecordType.Completed);
            _writer.Write(clientId);
            _writer.Write(deliveryId);
            EndRecord();
            _model.Completed(clientId, deliveryId);
            return Appended();
        }
    }

    public long InboundQos2Added(string clientId, ushort packetId) =>
        Append(RecordType.InboundQos2Added, w => { w.Write(clientId); w.Write(packetId); }, m => m.InboundQos2Added(clientId, packetId));

    public long InboundQos2Released(string clientId, ushort packetId) =>
        Append(RecordType.InboundQos2Released, w => { w.Write(clientId); w.Write(packetId); }, m => m.InboundQos2Released(clientId, packetId));

    static void WriteSessionStarted(BinaryWriter w, string clientId, uint expiry, string? username, MqttMessage? will, uint willDelay)
    {
        w.Write(clientId);
        w.Write(expiry);
        StoreRecords.WriteNullable(w, username);
        w.Write(will is not null);
        if (will is not null)
        {
            StoreRecords.WriteMessage(w, will);
            w.Write(willDelay);
        }
    }

    static void WriteSessionOffline(BinaryWriter w, string clientId, DateTimeOffset at, DateTimeOffset? willDueAt)
    {
        w.Write(clientId);
        w.Write(at.UtcTicks);
        w.Write(willDueAt is { } due ? due.UtcTicks : 0L);
    }

    long Append(RecordType type, Action<BinaryWriter> write, Action<StoreModel> apply)
    {
        long position;
        lock (_lock)
        {
            AppendLocked(type, write);
            apply(_model);
            position = ++_appended;
        }
        if (Interlocked.Exchange(ref _signaled, 1) == 0)
        {
            _flushSignal.Release();
        }
        return position;
    }

    void AppendLocked(RecordType type, Action<BinaryWriter> write)
    {
        BeginRecord(type);
        write(_writer);
        EndRecord();
    }

    // Begin/EndRecord frame what is written to _writer in between; callers hold _lock.
    void BeginRecord(RecordType type)
    {
        _scratch.SetLength(0);
        _writer.Write((byte)type);
    }

    void EndRecord()
    {
        _writer.Flush();
        WriteFrame(_pending, _scratch.GetBuffer().AsSpan(0, (int)_scratch.Length));
    }

    /// <summary>Counts the record just written and wakes the writer thread. Caller holds _lock (a Lock may be released by the same thread later).</summary>
    long Appended()
    {
        var position = ++_appended;
        if (Interlocked.Exchange(ref _signaled, 1) == 0)
        {
            _flushSignal.Release();
        }
        return position;
    }

    static void WriteFrame(Stream target, ReadOnlySpan<byte> record)
    {
        Span<byte> frame = stackalloc byte[FrameLength];
        BinaryPrimitives.WriteInt32LittleEndian(frame, record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], Crc32.Compute(record));
        target.Write(frame);
        target.Write(record);
    }

    // ------------------------------------------------------------------ writing

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
            if (_failure is null && _fileLength > _options.CompactAfterBytes && _fileLength > 4 * _lastRewriteLength)
            {
                Rewrite();
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
            _fileLength += _writing.Length;
            WriteLatencyObserver?.Invoke(Stopwatch.GetElapsedTime(started));
        }
        _writing.SetLength(0);
        Volatile.Write(ref _durable, target);
        ReleaseWaiters(target);
    }

    /// <summary>Marks the store failed for good: waiters fault now, later ones at once, and <c>_durable</c> stays where the last confirmed write left it.</summary>
    void Fail(Exception failure)
    {
        Log.WriteFailed(_logger, _options.Directory, failure);
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
            _file.SetLength(_fileLength);
            _file.Flush(flushToDisk: _options.Durability == DurabilityPolicy.Fsync);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Log.TailNotCut(_logger, _options.Directory, ex);
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

    /// <summary>Writes the live state to a new log generation and switches to it: compaction.</summary>
    void Rewrite()
    {
        lock (_lock)
        {
            var next = _generation + 1;
            var path = Path.Combine(_options.Directory, FileName(next));
            var temporary = path + ".tmp";
            FileStream? appender = null;
            try
            {
                using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                {
                    WriteHeader(file, next);
                    WriteLiveState(file);
                    file.Flush(flushToDisk: true);
                }
                // opened before the rename (the handle follows it), so that nothing after the rename can fail but the directory sync
                appender = OpenForAppend(temporary);
                File.Move(temporary, path, overwrite: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                appender?.Dispose();
                Log.CompactionFailed(_logger, _options.Directory, ex);
                _lastRewriteLength = _fileLength; // back off: try again after the log grows fourfold
                TryDelete(temporary);
                return;
            }
            // from here the new generation is the log: a restart opens the highest one
            var previous = _file;
            var previousPath = Path.Combine(_options.Directory, FileName(_generation));
            _file = appender;
            _generation = next;
            _fileLength = _lastRewriteLength = appender.Length;
            previous.Dispose();
            // what waited to be written is in the new file already (it was applied to the mirror)
            _pending.SetLength(0);
            if (_options.Durability == DurabilityPolicy.Fsync)
            {
                try
                {
                    // the rename itself must survive a power loss before the new file's records count as durable
                    DirectorySync.Flush(_options.Directory);
                }
                catch (IOException ex)
                {
                    Fail(ex);
                    return;
                }
            }
            TryDelete(previousPath);
            Volatile.Write(ref _durable, _appended);
            ReleaseWaiters(_appended);
            Log.Compacted(_logger, next, _fileLength);
        }
    }

    void WriteLiveState(Stream target)
    {
        var written = new HashSet<long>();
        void Record(RecordType type, Action<BinaryWriter> write)
        {
            _scratch.SetLength(0);
            _writer.Write((byte)type);
            write(_writer);
            _writer.Flush();
            WriteFrame(target, _scratch.GetBuffer().AsSpan(0, (int)_scratch.Length));
        }

        var state = _model.State;
        foreach (var message in state.Retained.Values)
        {
            Record(RecordType.RetainSet, w => StoreRecords.WriteMessage(w, message));
        }
        foreach (var session in state.Sessions.Values)
        {
            Record(RecordType.SessionStarted, w => WriteSessionStarted(w, session.ClientId, session.ExpiryInterval, session.Username, session.Will, session.WillDelaySeconds));
            if (!session.Online)
            {
                Record(RecordType.SessionOffline, w => WriteSessionOffline(w, session.ClientId, session.DisconnectedAt ?? default, session.WillDueAt));
            }
            foreach (var subscription in session.Subscriptions.Values)
            {
                Record(RecordType.Subscribed, w => { w.Write(session.ClientId); StoreRecords.WriteSubscription(w, subscription); });
            }
            foreach (var (_, delivery) in session.Deliveries)
            {
                if (written.Add(delivery.Message.StoreId))
                {
                    Record(RecordType.Message, w => { w.Write(delivery.Message.StoreId); StoreRecords.WriteMessage(w, delivery.Message); });
                }
                Record(RecordType.Enqueued, w => { w.Write(session.ClientId); StoreRecords.WriteDelivery(w, delivery); });
                if (delivery.State != StoredDeliveryState.Queued)
                {
                    Record(RecordType.InflightChanged, w =>
                    {
                        w.Write(session.ClientId);
                        w.Write(delivery.DeliveryId);
                        w.Write(delivery.PacketId);
                        w.Write((byte)delivery.State);
                    });
                }
            }
            foreach (var id in session.InboundQos2)
            {
                Record(RecordType.InboundQos2Added, w => { w.Write(session.ClientId); w.Write(id); });
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        _flushSignal.Release();
        await Task.Run(() => _flushThread.Join(TimeSpan.FromSeconds(30))).ConfigureAwait(false);
        lock (_lock)
        {
            // the flush thread wrote (and synced) the last batch; _file buffers nothing, so closing it writes nothing more
            _file.Dispose();
        }
        // a change reported while the store closed is never written: its waiter must not hang
        FailWaiters(new ObjectDisposedException(nameof(EmbeddedBrokerStore)));
        _flushSignal.Dispose();
    }

    // ------------------------------------------------------------------ opening and replay

    static string FileName(long generation) => $"store-{generation:D10}.log";

    FileStream OpenLatest()
    {
        foreach (var leftover in Directory.GetFiles(_options.Directory, "store-*.log.tmp"))
        {
            TryDelete(leftover); // a rewrite that did not finish; the previous generation is still whole
        }
        var generations = Directory.GetFiles(_options.Directory, "store-*.log")
            .Select(path => (Path: path, Generation: long.TryParse(Path.GetFileName(path)[6..^4], out var g) ? g : -1))
            .Where(f => f.Generation >= 0)
            .OrderBy(f => f.Generation)
            .ToList();
        if (generations.Count == 0)
        {
            _generation = 1;
            using (var file = new FileStream(Path.Combine(_options.Directory, FileName(1)), FileMode.CreateNew, FileAccess.Write))
            {
                WriteHeader(file, 1);
                file.Flush(flushToDisk: true);
            }
            if (_options.Durability == DurabilityPolicy.Fsync)
            {
                DirectorySync.Flush(_options.Directory); // the new file's name must survive a power loss, like its records
            }
            var created = OpenForAppend(Path.Combine(_options.Directory, FileName(1)));
            _fileLength = _lastRewriteLength = created.Length;
            return created;
        }
        // a crash between a rewrite's rename and the old file's deletion leaves an older generation behind
        foreach (var (path, _) in generations.Take(generations.Count - 1))
        {
            TryDelete(path);
        }
        _generation = generations[^1].Generation;
        if (!HasValidHeader(generations[^1].Path))
        {
            // not ours or destroyed: keep it for inspection and start empty rather than fail every start (a crash loop)
            var aside = generations[^1].Path + $".unreadable-{DateTime.UtcNow:yyyyMMddHHmmss}";
            File.Move(generations[^1].Path, aside);
            Log.UnreadableLog(_logger, generations[^1].Path, aside);
            return OpenLatest();
        }
        var length = Replay(generations[^1].Path);
        var opened = OpenForAppend(generations[^1].Path);
        _fileLength = length;
        // how much of the replayed log is live is not known: let the first flush compact it if it is over the threshold.
        // Taking its whole length as the last rewrite's would raise the next compaction's bar fourfold at every restart
        // (a broker killed every few minutes grew one log to 300 MB and replayed 4 million records at its last start).
        _lastRewriteLength = 0;
        return opened;
    }

    static bool HasValidHeader(string path)
    {
        Span<byte> header = stackalloc byte[HeaderLength];
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read);
        return file.ReadAtLeast(header, HeaderLength, throwOnEndOfStream: false) == HeaderLength && header[..8].SequenceEqual(Magic);
    }

    /// <summary>The handle the log is appended through: unbuffered, so a write that returned is in the OS, not in a buffer of ours.</summary>
    static FileStream OpenForAppend(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read, bufferSize: 0);
        file.Seek(0, SeekOrigin.End);
        return file;
    }

    static void WriteHeader(Stream file, long generation)
    {
        Span<byte> header = stackalloc byte[HeaderLength];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], generation);
        file.Write(header);
    }

    /// <summary>Replays the log into the mirror; cuts a torn or corrupt tail. Returns the length of the good part.</summary>
    long Replay(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var messages = new Dictionary<long, MqttMessage>();
        var offset = HeaderLength;
        var records = 0;
        string? problem = null;
        while (offset < bytes.Length)
        {
            if (bytes.Length - offset < FrameLength)
            {
                problem = "torn frame header";
                break;
            }
            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
            if (length <= 0 || length > MaxRecordLength || length > bytes.Length - offset - FrameLength)
            {
                problem = length > bytes.Length - offset - FrameLength && length is > 0 and <= MaxRecordLength ? "torn record" : $"bad record length {length}";
                break;
            }
            var record = bytes.AsMemory(offset + FrameLength, length);
            if (Crc32.Compute(record.Span) != crc)
            {
                problem = "checksum mismatch";
                break;
            }
            try
            {
                Apply(record, messages);
            }
            catch (Exception ex) when (ex is EndOfStreamException or InvalidDataException or ArgumentException or FormatException or DecoderFallbackException)
            {
                problem = "undecodable record: " + ex.Message;
                break;
            }
            offset += FrameLength + length;
            records++;
        }
        _nextMessageId = messages.Count == 0 ? 1 : messages.Keys.Max() + 1;
        if (problem is not null)
        {
            Log.TailCut(_logger, path, offset, bytes.Length - offset, problem);
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
            file.SetLength(offset);
            file.Flush(flushToDisk: true);
        }
        Log.Replayed(_logger, path, records, _model.State.Sessions.Count, _model.State.Retained.Count);
        return offset;
    }

    void Apply(ReadOnlyMemory<byte> record, Dictionary<long, MqttMessage> messages)
    {
        using var stream = new MemoryStream(record.ToArray(), writable: false);
        using var r = new BinaryReader(stream, Encoding.UTF8);
        var type = (RecordType)r.ReadByte();
        switch (type)
        {
            case RecordType.Message:
                var id = r.ReadInt64();
                messages[id] = StoreRecords.ReadMessage(r, id);
                break;
            case RecordType.RetainSet:
                _model.RetainSet(StoreRecords.ReadMessage(r));
                break;
            case RecordType.RetainClear:
                _model.RetainClear(r.ReadString());
                break;
            case RecordType.SessionStarted:
                var clientId = r.ReadString();
                var expiry = r.ReadUInt32();
                var username = StoreRecords.ReadNullable(r);
                MqttMessage? will = null;
                uint delay = 0;
                if (r.ReadBoolean())
                {
                    will = StoreRecords.ReadMessage(r);
                    delay = r.ReadUInt32();
                }
                _model.SessionStarted(clientId, expiry, username, will, delay);
                break;
            case RecordType.SessionOffline:
                var offlineId = r.ReadString();
                var at = new DateTimeOffset(r.ReadInt64(), TimeSpan.Zero);
                var due = r.ReadInt64();
                _model.SessionOffline(offlineId, at, due == 0 ? null : new DateTimeOffset(due, TimeSpan.Zero));
                break;
            case RecordType.SessionExpiryChanged:
                _model.SessionExpiryChanged(r.ReadString(), r.ReadUInt32());
                break;
            case RecordType.SessionEnded:
                _model.SessionEnded(r.ReadString());
                break;
            case RecordType.Subscribed:
                var subscriber = r.ReadString();
                _model.Subscribed(subscriber, StoreRecords.ReadSubscription(r));
                break;
            case RecordType.Unsubscribed:
                _model.Unsubscribed(r.ReadString(), r.ReadString());
                break;
            case RecordType.Enqueued:
                var owner = r.ReadString();
                if (StoreRecords.ReadDelivery(r, messages) is { } delivery)
                {
                    _model.Enqueued(owner, delivery);
                }
                break;
            case RecordType.InflightChanged:
                _model.InflightChanged(r.ReadString(), r.ReadInt64(), r.ReadUInt16(), (StoredDeliveryState)r.ReadByte());
                break;
            case RecordType.Completed:
                _model.Completed(r.ReadString(), r.ReadInt64());
                break;
            case RecordType.InboundQos2Added:
                _model.InboundQos2Added(r.ReadString(), r.ReadUInt16());
                break;
            case RecordType.InboundQos2Released:
                _model.InboundQos2Released(r.ReadString(), r.ReadUInt16());
                break;
            default:
                throw new InvalidDataException($"unknown record type {(byte)type}");
        }
    }

    static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    static partial class Log
    {
        [LoggerMessage(101, LogLevel.Warning, "Store log {Path}: cut {Bytes} bytes at offset {Offset} ({Problem}); everything before it was replayed")]
        public static partial void TailCut(ILogger logger, string path, long offset, long bytes, string problem);

        [LoggerMessage(102, LogLevel.Information, "Store log {Path}: replayed {Records} records, {Sessions} sessions, {Retained} retained messages")]
        public static partial void Replayed(ILogger logger, string path, int records, int sessions, int retained);

        [LoggerMessage(103, LogLevel.Critical, "Store in {Directory} cannot write; acknowledgements that need it are refused")]
        public static partial void WriteFailed(ILogger logger, string directory, Exception exception);

        [LoggerMessage(104, LogLevel.Information, "Store compacted into generation {Generation} ({Bytes} bytes)")]
        public static partial void Compacted(ILogger logger, long generation, long bytes);

        [LoggerMessage(106, LogLevel.Critical, "Store log {Path} has no valid header: moved to {Aside} and starting with an empty store")]
        public static partial void UnreadableLog(ILogger logger, string path, string aside);

        [LoggerMessage(105, LogLevel.Error, "Store compaction in {Directory} failed; the current log stays in use")]
        public static partial void CompactionFailed(ILogger logger, string directory, Exception exception);

        [LoggerMessage(107, LogLevel.Warning, "Store in {Directory}: the part of a failed write could not be cut from the log; the next start cuts it")]
        public static partial void TailNotCut(ILogger logger, string directory, Exception exception);
    }
}
