namespace IotRealtime.Broker.Tests.Interop;

/// <summary>
/// One received message as the outside clients print it: "MSG &lt;topic&gt; &lt;qos&gt; &lt;retain&gt; &lt;payload&gt;"
/// (mosquitto_sub with -F "MSG %t %q %r %p", and the paho scripts).
/// </summary>
public sealed record MessageLine(string Topic, int QoS, bool Retain, string Payload)
{
    public const string Prefix = "MSG ";

    public static bool Is(string line) => line.StartsWith(Prefix, StringComparison.Ordinal);

    public static MessageLine Parse(string line)
    {
        var parts = line.Split(' ', 5);
        if (parts.Length < 4 || parts[0] != "MSG") throw new FormatException($"Not a message line: '{line}'.");
        return new MessageLine(parts[1], int.Parse(parts[2]), parts[3] is "1" or "True" or "true", parts.Length == 5 ? parts[4] : "");
    }
}
