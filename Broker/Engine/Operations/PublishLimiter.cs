namespace IotRealtime.Broker.Engine.Operations;

/// <summary>What the per-client publish limits decided about one PUBLISH.</summary>
internal enum PublishLimitDecision
{
    Allowed,
    /// <summary>Over the limit: refuse this publish (MQTT 5 QoS 1/2: 0x97; QoS 0: dropped).</summary>
    Refused,
    /// <summary>Persistently over the limit (about twice the rate for a second): disconnect with 0x97.</summary>
    Disconnect,
}

/// <summary>
/// Per-connection inbound limits (<see cref="BrokerOptions.MaxPublishRatePerClient"/>, <see cref="BrokerOptions.MaxPublishBytesPerClient"/>).
/// Made only when a limit is set, used only by the connection's reader.
/// </summary>
internal sealed class PublishLimiter
{
    readonly TimeProvider _time;
    readonly TokenBucket? _messages;
    readonly TokenBucket? _bytes;
    // refused traffic in seconds of allowance, decaying at one per second: above one, the client sends over twice its rate
    double _overshoot;
    long _last;

    PublishLimiter(BrokerOptions options, TimeProvider time)
    {
        _time = time;
        _messages = options.MaxPublishRatePerClient > 0 ? new TokenBucket(options.MaxPublishRatePerClient, time) : null;
        _bytes = options.MaxPublishBytesPerClient > 0 ? new TokenBucket(options.MaxPublishBytesPerClient, time) : null;
        _last = time.GetTimestamp();
    }

    public static PublishLimiter? Create(BrokerOptions options, TimeProvider time) =>
        options.MaxPublishRatePerClient > 0 || options.MaxPublishBytesPerClient > 0 ? new PublishLimiter(options, time) : null;

    /// <summary>Which limit refused the last publish: true for the byte rate, false for the message rate.</summary>
    public bool LastRefusalWasBytes { get; private set; }

    public PublishLimitDecision Check(long payloadBytes)
    {
        var now = _time.GetTimestamp();
        _overshoot = Math.Max(0, _overshoot - _time.GetElapsedTime(_last, now).TotalSeconds);
        _last = now;
        if (_messages is not null && !_messages.TryTake(1))
        {
            LastRefusalWasBytes = false;
            _overshoot += 1 / _messages.Rate;
        }
        else if (_bytes is not null && !_bytes.TryTake(payloadBytes))
        {
            LastRefusalWasBytes = true;
            _overshoot += Math.Max(1, payloadBytes) / _bytes.Rate;
        }
        else
        {
            return PublishLimitDecision.Allowed;
        }
        return _overshoot > 1 ? PublishLimitDecision.Disconnect : PublishLimitDecision.Refused;
    }
}
