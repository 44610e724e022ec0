using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// Compaction: once the log outgrows <see cref="StoreOptions.CompactAfterBytes"/> and four times its last rewrite, it
/// is rewritten with only the live records (new file, fsync, atomic rename), so the store stays bounded under churn.
/// It runs on the writer's thread between writes. The live state is copied under the mirror's lock together with the
/// log position it stands for, and written out without that lock: changes go on being appended meanwhile (the broker's
/// threads do not wait for the rewrite), and the writer puts them into the new file after the copy.
/// </summary>
internal sealed class LogCompactor(StoreOptions options, ILogger logger, StoreMirror mirror, LogWriter log, long lastRewriteLength)
{
    readonly RecordEncoder _encoder = new();
    long _lastRewriteLength = lastRewriteLength;

    /// <summary>Test seam: runs on the writer thread once the live state is captured, before the new file is written.</summary>
    internal Action? Captured { get; set; }

    /// <summary>Rewrites the log when it has grown enough; called by the writer thread after each write.</summary>
    public void MaybeCompact()
    {
        if (log.FileLength > options.CompactAfterBytes && log.FileLength > 4 * _lastRewriteLength)
        {
            Rewrite();
        }
    }

    /// <summary>Writes the live state to a new log generation and switches to it.</summary>
    void Rewrite()
    {
        var (state, mark) = mirror.Capture();
        Captured?.Invoke();
        var next = log.Generation + 1;
        var path = Path.Combine(options.Directory, LogFormat.FileName(next));
        var temporary = path + ".tmp";
        FileStream? appender = null;
        try
        {
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                LogFormat.WriteHeader(file, next);
                WriteLiveState(file, state);
                file.Flush(flushToDisk: true);
            }
            // opened before the rename (the handle follows it), so that nothing after the rename can fail but the directory sync
            appender = LogFormat.OpenForAppend(temporary);
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            appender?.Dispose();
            StoreLog.CompactionFailed(logger, options.Directory, ex);
            _lastRewriteLength = log.FileLength; // back off: try again after the log grows fourfold
            LogFormat.TryDelete(temporary);
            return;
        }
        // from here the new generation is the log: a restart opens the highest one
        _lastRewriteLength = appender.Length;
        if (log.SwitchTo(appender, next, mark))
        {
            StoreLog.Compacted(logger, next, _lastRewriteLength);
        }
    }

    void WriteLiveState(Stream target, StoredState state)
    {
        var written = new HashSet<long>();
        void Record(RecordType type, Action<BinaryWriter> write)
        {
            write(_encoder.Begin(type));
            LogFormat.WriteFrame(target, _encoder.End());
        }

        foreach (var message in state.Retained.Values)
        {
            Record(RecordType.RetainSet, w => StoreRecords.WriteMessage(w, message));
        }
        foreach (var session in state.Sessions.Values)
        {
            Record(RecordType.SessionStarted, w => StoreRecords.WriteSessionStarted(w, session.ClientId, session.ExpiryInterval, session.Username, session.Will, session.WillDelaySeconds));
            if (!session.Online)
            {
                Record(RecordType.SessionOffline, w => StoreRecords.WriteSessionOffline(w, session.ClientId, session.DisconnectedAt ?? default, session.WillDueAt));
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
}
