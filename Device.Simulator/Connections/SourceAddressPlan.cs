using System.Net;

namespace IotRealtime.Device.Simulator.Connections;

/// <summary>
/// Spreads outgoing sockets over local addresses 127.0.0.2, 127.0.0.3, ... so that no single source address
/// runs out of ephemeral ports (about 28k per address on Linux).
/// </summary>
public sealed class SourceAddressPlan
{
    readonly IPEndPoint[]? _endPoints;
    readonly int _perSource;

    public SourceAddressPlan(IPAddress? sourceBase, int perSource, int connections)
    {
        _perSource = perSource;
        if (sourceBase is null) return;

        var bytes = sourceBase.GetAddressBytes();
        var count = (connections + perSource - 1) / perSource;
        _endPoints = new IPEndPoint[count];
        for (var i = 0; i < count; i++)
        {
            var address = (byte[])bytes.Clone();
            address[3] = (byte)(bytes[3] + i);
            _endPoints[i] = new IPEndPoint(new IPAddress(address), 0);
        }
    }

    /// <summary>The local end point connection <paramref name="index"/> binds to, or null to let the OS choose.</summary>
    public IPEndPoint? For(int index) => _endPoints?[index / _perSource];

    public IReadOnlyList<IPEndPoint> EndPoints => _endPoints ?? [];
}
