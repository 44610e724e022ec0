namespace IotRealtime.Broker.Kafka;

/// <summary>
/// How far a reader got in each partition of a replay: the position of the last record it took, or the one just before
/// the replay's start where it took none yet. Its text form (positions joined with ',') given back as
/// <see cref="ReplayFrom.After"/> resumes with no gap and no duplicate; SSE sends it as the event id.
/// </summary>
public sealed class KafkaCursor
{
    readonly List<KafkaPosition> _positions;

    /// <param name="start">The first offsets still to read, one per partition (<see cref="KafkaReplay.Start"/>).</param>
    public KafkaCursor(IEnumerable<KafkaPosition> start)
    {
        ArgumentNullException.ThrowIfNull(start);
        _positions = start.Select(p => p with { Offset = p.Offset - 1 }).ToList();
    }

    public IReadOnlyList<KafkaPosition> Positions => _positions;

    /// <summary>Records that the reader took the record at <paramref name="position"/>.</summary>
    public void Advance(KafkaPosition position)
    {
        var i = _positions.FindIndex(p => p.Topic == position.Topic && p.Partition == position.Partition);
        if (i < 0) _positions.Add(position);
        else if (position.Offset > _positions[i].Offset) _positions[i] = position;
    }

    public override string ToString() => KafkaPosition.FormatList(_positions);
}
