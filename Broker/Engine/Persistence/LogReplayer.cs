using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// Reads the log at start: opens the newest generation (or creates the first), removing what an interrupted rewrite
/// left behind, and replays it into the mirror's model. A torn or corrupt tail — detected by the frame's length and
/// CRC-32, or a record that does not decode — is reported and cut from the file, never replayed. A file without a
/// valid header is set aside and the store starts empty, rather than fail every start (a crash loop).
/// </summary>
internal sealed class LogReplayer(StoreOptions options, ILogger logger, StoreModel model)
{
    /// <summary>Replays the log into the model and returns it opened for append.</summary>
    public OpenedLog Open()
    {
        Directory.CreateDirectory(options.Directory);
        foreach (var leftover in Directory.GetFiles(options.Directory, "store-*.log.tmp"))
        {
            LogFormat.TryDelete(leftover); // a rewrite that did not finish; the previous generation is still whole
        }
        return OpenLatest();
    }

    OpenedLog OpenLatest()
    {
        var generations = Directory.GetFiles(options.Directory, "store-*.log")
            .Select(path => (Path: path, Generation: long.TryParse(Path.GetFileName(path)[6..^4], out var g) ? g : -1))
            .Where(f => f.Generation >= 0)
            .OrderBy(f => f.Generation)
            .ToList();
        if (generations.Count == 0)
        {
            var path = Path.Combine(options.Directory, LogFormat.FileName(1));
            using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                LogFormat.WriteHeader(file, 1);
                file.Flush(flushToDisk: true);
            }
            if (options.Durability == DurabilityPolicy.Fsync)
            {
                DirectorySync.Flush(options.Directory); // the new file's name must survive a power loss, like its records
            }
            var created = LogFormat.OpenForAppend(path);
            return new OpenedLog(created, 1, created.Length, NextMessageId: 1);
        }
        // a crash between a rewrite's rename and the old file's deletion leaves an older generation behind
        foreach (var (path, _) in generations.Take(generations.Count - 1))
        {
            LogFormat.TryDelete(path);
        }
        var (latest, generation) = generations[^1];
        if (!LogFormat.HasValidHeader(latest))
        {
            // not ours or destroyed: keep it for inspection and start empty rather than fail every start (a crash loop)
            var aside = latest + $".unreadable-{DateTime.UtcNow:yyyyMMddHHmmss}";
            File.Move(latest, aside);
            StoreLog.UnreadableLog(logger, latest, aside);
            return OpenLatest();
        }
        var (length, nextMessageId) = Replay(latest);
        return new OpenedLog(LogFormat.OpenForAppend(latest), generation, length, nextMessageId);
    }

    /// <summary>Replays the log into the model; cuts a torn or corrupt tail. Returns the length of the good part and the next message id.</summary>
    (long Length, long NextMessageId) Replay(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var messages = new Dictionary<long, MqttMessage>();
        var offset = LogFormat.HeaderLength;
        var records = 0;
        string? problem = null;
        while (offset < bytes.Length)
        {
            if (bytes.Length - offset < LogFormat.FrameLength)
            {
                problem = "torn frame header";
                break;
            }
            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset));
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4));
            var room = bytes.Length - offset - LogFormat.FrameLength;
            if (length <= 0 || length > LogFormat.MaxRecordLength || length > room)
            {
                problem = length > room && length is > 0 and <= LogFormat.MaxRecordLength ? "torn record" : $"bad record length {length}";
                break;
            }
            var record = bytes.AsMemory(offset + LogFormat.FrameLength, length);
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
            offset += LogFormat.FrameLength + length;
            records++;
        }
        if (problem is not null)
        {
            StoreLog.TailCut(logger, path, offset, bytes.Length - offset, problem);
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
            file.SetLength(offset);
            file.Flush(flushToDisk: true);
        }
        StoreLog.Replayed(logger, path, records, model.State.Sessions.Count, model.State.Retained.Count);
        return (offset, messages.Count == 0 ? 1 : messages.Keys.Max() + 1);
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
                model.RetainSet(StoreRecords.ReadMessage(r));
                break;
            case RecordType.RetainClear:
                model.RetainClear(r.ReadString());
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
                model.SessionStarted(clientId, expiry, username, will, delay);
                break;
            case RecordType.SessionOffline:
                var offlineId = r.ReadString();
                var at = new DateTimeOffset(r.ReadInt64(), TimeSpan.Zero);
                var due = r.ReadInt64();
                model.SessionOffline(offlineId, at, due == 0 ? null : new DateTimeOffset(due, TimeSpan.Zero));
                break;
            case RecordType.SessionExpiryChanged:
                model.SessionExpiryChanged(r.ReadString(), r.ReadUInt32());
                break;
            case RecordType.SessionEnded:
                model.SessionEnded(r.ReadString());
                break;
            case RecordType.Subscribed:
                var subscriber = r.ReadString();
                model.Subscribed(subscriber, StoreRecords.ReadSubscription(r));
                break;
            case RecordType.Unsubscribed:
                model.Unsubscribed(r.ReadString(), r.ReadString());
                break;
            case RecordType.Enqueued:
                var owner = r.ReadString();
                if (StoreRecords.ReadDelivery(r, messages) is { } delivery)
                {
                    model.Enqueued(owner, delivery);
                }
                break;
            case RecordType.InflightChanged:
                model.InflightChanged(r.ReadString(), r.ReadInt64(), r.ReadUInt16(), (StoredDeliveryState)r.ReadByte());
                break;
            case RecordType.Completed:
                model.Completed(r.ReadString(), r.ReadInt64());
                break;
            case RecordType.InboundQos2Added:
                model.InboundQos2Added(r.ReadString(), r.ReadUInt16());
                break;
            case RecordType.InboundQos2Released:
                model.InboundQos2Released(r.ReadString(), r.ReadUInt16());
                break;
            default:
                throw new InvalidDataException($"unknown record type {(byte)type}");
        }
    }
}

/// <summary>The log after replay: opened for append at <paramref name="Length"/>, everything in it durable.</summary>
internal readonly record struct OpenedLog(FileStream File, long Generation, long Length, long NextMessageId);
