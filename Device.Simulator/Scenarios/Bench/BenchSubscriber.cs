using System.Net.Sockets;
using IotRealtime.Device.Simulator.Scenarios.FanIn;

namespace IotRealtime.Device.Simulator.Scenarios.Bench;

/// <summary>
/// One subscriber of a fanout, p2p, shared or latency run: a <see cref="PayloadSubscriber"/> that reports each read's
/// first-time deliveries, and the messages they complete, to the run's <see cref="BenchDeliveries"/>.
/// </summary>
public sealed class BenchSubscriber(Socket socket, int publishers, int bufferBytes, BenchDeliveries deliveries, TimeProvider time)
    : PayloadSubscriber(socket, publishers, bufferBytes, time)
{
    protected override bool Arrived(int publisher, long sequence) => deliveries.Arrive(publisher, sequence);

    protected override void OnRead(int fresh, int completed, long timestamp) => deliveries.Add(fresh, completed, timestamp);
}
