using System.Globalization;

namespace IotRealtime.Bridges.Feed;

/// <summary>
/// A position in the embedded history: <c>&lt;epoch&gt;-&lt;seq&gt;</c>. The epoch names one history instance (a new
/// one on every start), so a client that sends a position from before a restart is told its history is gone rather
/// than silently skipping; seq is global over all topics and strictly increasing. Clients treat the text as opaque.
/// </summary>
public readonly record struct FeedPosition(string Epoch, long Seq)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Epoch}-{Seq}");

    public static bool TryParse(string? text, out FeedPosition position)
    {
        position = default;
        if (string.IsNullOrEmpty(text) || text.Length > 64) return false;
        var dash = text.LastIndexOf('-');
        if (dash <= 0 || dash == text.Length - 1) return false;
        if (!long.TryParse(text.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var seq)) return false;
        position = new FeedPosition(text[..dash], seq);
        return true;
    }
}
