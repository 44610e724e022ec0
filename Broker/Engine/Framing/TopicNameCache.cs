using System.Text;

namespace IotRealtime.Broker.Engine.Framing;

/// <summary>
/// The last topic name one connection published to, as bytes and as a string: a device publishing to the same topic
/// again costs a byte comparison instead of a UTF-8 decode and a new string. One per connection, used by its reader only.
/// </summary>
internal sealed class TopicNameCache
{
    // longer names are decoded every time rather than held for the connection's life
    const int MaxCachedBytes = 256;

    byte[] _bytes = [];
    string _name = string.Empty;

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.SequenceEqual(_bytes))
        {
            return _name;
        }
        var name = Encoding.UTF8.GetString(utf8);
        if (utf8.Length <= MaxCachedBytes)
        {
            _bytes = utf8.ToArray();
            _name = name;
        }
        return name;
    }
}
