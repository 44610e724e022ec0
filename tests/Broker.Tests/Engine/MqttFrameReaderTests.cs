using System.Buffers;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Framing;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Engine;

/// <summary>The frame reader on its own: whole, partial, split and malformed frames.</summary>
public sealed class MqttFrameReaderTests
{
    const long Max = 1024 * 1024;

    sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(byte[] bytes, Segment? previous)
        {
            Memory = bytes;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }

    /// <summary>The bytes as a sequence of the given pieces, so a frame can straddle segments.</summary>
    static ReadOnlySequence<byte> Pieces(params byte[][] pieces)
    {
        var first = new Segment(pieces[0], null);
        var last = first;
        foreach (var piece in pieces.Skip(1))
        {
            last = new Segment(piece, last);
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    static byte[] Frame(byte header, int bodyLength)
    {
        var length = new List<byte>();
        var x = bodyLength;
        do
        {
            var digit = (byte)(x % 128);
            x /= 128;
            length.Add(x > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (x > 0);
        return [header, .. length, .. Enumerable.Range(0, bodyLength).Select(i => (byte)i)];
    }

    [Fact]
    public void Reads_consecutive_frames_and_stops_at_a_partial_one_leaving_it_in_the_buffer()
    {
        var ping = Frame(0xC0, 0);
        var publish = Frame(0x30, 200); // two length bytes
        var partial = Frame(0x82, 10)[..5];
        var buffer = new ReadOnlySequence<byte>([.. ping, .. publish, .. partial]);

        Assert.True(MqttFrameReader.TryRead(ref buffer, Max, out var h1, out var b1, out var t1));
        Assert.Equal((0xC0, 0, 2), (h1, b1.Count, t1));
        Assert.True(MqttFrameReader.TryRead(ref buffer, Max, out var h2, out var b2, out var t2));
        Assert.Equal((0x30, 200, 203), (h2, b2.Count, t2));
        Assert.Equal(publish[3..], b2.ToArray());
        Assert.False(MqttFrameReader.TryRead(ref buffer, Max, out _, out _, out _));
        Assert.Equal(partial, buffer.ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(150)]
    public void A_frame_split_across_segments_at_any_point_reads_whole(int splitAt)
    {
        var frame = Frame(0x32, 300);
        var buffer = Pieces(frame[..splitAt], frame[splitAt..]);

        Assert.True(MqttFrameReader.TryRead(ref buffer, Max, out var header, out var body, out var total));

        Assert.Equal(0x32, header);
        Assert.Equal(frame.Length, total);
        Assert.Equal(frame[3..], body.ToArray());
        Assert.True(buffer.IsEmpty);
    }

    [Theory]
    [InlineData(127, 1)]
    [InlineData(128, 2)]
    [InlineData(16_383, 2)]
    [InlineData(16_384, 3)]
    [InlineData(2_097_152, 4)]
    public void Remaining_length_takes_one_to_four_bytes(int bodyLength, int lengthBytes)
    {
        var frame = Frame(0x30, bodyLength);
        var buffer = new ReadOnlySequence<byte>(frame);

        Assert.True(MqttFrameReader.TryRead(ref buffer, long.MaxValue, out _, out var body, out var total));

        Assert.Equal(bodyLength, body.Count);
        Assert.Equal(1 + lengthBytes + bodyLength, total);
    }

    [Fact]
    public void A_missing_length_byte_waits_for_more()
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 0x30, 0x80, 0x80 });

        Assert.False(MqttFrameReader.TryRead(ref buffer, Max, out _, out _, out _));
        Assert.Equal(3, buffer.Length);
    }

    [Fact]
    public void A_fifth_length_byte_is_malformed()
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 });

        var error = Assert.Throws<MqttProtocolError>(() => MqttFrameReader.TryRead(ref buffer, long.MaxValue, out _, out _, out _));

        Assert.Equal(MqttDisconnectReasonCode.MalformedPacket, error.ReasonCode);
    }

    [Fact]
    public void A_frame_over_the_maximum_is_refused_as_soon_as_its_length_is_known()
    {
        // only the fixed header of a 1,000-byte frame has arrived
        var buffer = new ReadOnlySequence<byte>(Frame(0x30, 1000)[..3]);

        var error = Assert.Throws<MqttProtocolError>(() => MqttFrameReader.TryRead(ref buffer, 999, out _, out _, out _));

        Assert.Equal(MqttDisconnectReasonCode.PacketTooLarge, error.ReasonCode);
    }

    [Fact]
    public void A_frame_exactly_at_the_maximum_is_read()
    {
        var frame = Frame(0x30, 997); // 1 + 2 + 997 = 1,000 bytes
        var buffer = new ReadOnlySequence<byte>(frame);

        Assert.True(MqttFrameReader.TryRead(ref buffer, 1000, out _, out _, out var total));
        Assert.Equal(1000, total);
    }
}
