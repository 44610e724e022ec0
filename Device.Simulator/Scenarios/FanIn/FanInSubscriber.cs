using System.Net.Sockets;
using IotRealtime.Device.Simulator.Reports;

namespace IotRealtime.Device.Simulator.Scenarios.FanIn;

/// <summary>
/// The one subscriber of a fan-in run: a <see cref="PayloadSubscriber"/> with a buffer large enough for many frames
/// per read, and always for at least one whole frame, that counts distinct messages, takes throughput marks and
/// gives credits back through the run's <see cref="FanInWindows"/>.
/// </summary>
public sealed class FanInSubscriber(Socket socket, int publishers, int payloadBytes, FanInWindows windows, TimeProvider time)
    : PayloadSubscriber(socket, publishers, Math.Max(1024 * 1024, 2 * (payloadBytes + 1024)), time)
{
    public const string Filter = "bench/#";

    /// <summary>A throughput mark is taken every this many messages (see <see cref="SteadyStateRate"/>).</summary>
    const int MarkEvery = 1024;

    readonly List<(long Received, long Timestamp)> _marks = [];
    long _received;

    /// <summary>Distinct messages received so far (duplicates not counted).</summary>
    public long Received => Volatile.Read(ref _received);

    public IReadOnlyList<(long Received, long Timestamp)> Marks => _marks;

    public Task SubscribeAsync(int qos, CancellationToken cancellationToken) => SubscribeAsync(Filter, qos, cancellationToken);

    protected override bool Arrived(int publisher, long sequence)
    {
        windows.Arrived(publisher, sequence);
        return false;
    }

    protected override void OnRead(int fresh, int completed, long timestamp)
    {
        if (fresh == 0) return;
        var before = _received;
        Volatile.Write(ref _received, before + fresh);
        if (before == 0 || (before + fresh) / MarkEvery != before / MarkEvery) _marks.Add((before + fresh, timestamp));
        windows.Settle(fresh);
    }
}
