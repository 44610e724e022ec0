using System.Buffers.Binary;

namespace IotRealtime.Broker.Engine.Persistence;

/// <summary>
/// The log file format shared by its writer, replayer and compactor: a header (magic and generation) followed by
/// records, each framed with its length and CRC-32. Generation N lives in <c>store-N.log</c>; a rewrite is written to
/// <c>store-N.log.tmp</c> and renamed into place.
/// </summary>
internal static class LogFormat
{
    public static readonly byte[] Magic = "IOTRTLG1"u8.ToArray();
    public const int HeaderLength = 8 + 8;
    public const int FrameLength = 8;
    public const int MaxRecordLength = 300 * 1024 * 1024;

    public static string FileName(long generation) => $"store-{generation:D10}.log";

    public static void WriteHeader(Stream file, long generation)
    {
        Span<byte> header = stackalloc byte[HeaderLength];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], generation);
        file.Write(header);
    }

    public static bool HasValidHeader(string path)
    {
        Span<byte> header = stackalloc byte[HeaderLength];
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read);
        return file.ReadAtLeast(header, HeaderLength, throwOnEndOfStream: false) == HeaderLength && header[..8].SequenceEqual(Magic);
    }

    public static void WriteFrame(Stream target, ReadOnlySpan<byte> record) => WriteFrame(target, record, Crc32.Compute(record));

    public static void WriteFrame(Stream target, ReadOnlySpan<byte> record, uint crc)
    {
        Span<byte> frame = stackalloc byte[FrameLength];
        BinaryPrimitives.WriteInt32LittleEndian(frame, record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], crc);
        target.Write(frame);
        target.Write(record);
    }

    /// <summary>The handle the log is appended through: unbuffered, so a write that returned is in the OS, not in a buffer of ours.</summary>
    public static FileStream OpenForAppend(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.Read, bufferSize: 0);
        file.Seek(0, SeekOrigin.End);
        return file;
    }

    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
