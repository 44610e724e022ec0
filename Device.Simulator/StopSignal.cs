using System.Runtime.InteropServices;

namespace IotRealtime.Device.Simulator;

/// <summary>Ctrl+C and SIGTERM cancel the run so a scenario can still disconnect cleanly and write its report.</summary>
public sealed class StopSignal : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    readonly PosixSignalRegistration _sigint;
    readonly PosixSignalRegistration _sigterm;

    public StopSignal()
    {
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    public CancellationToken Token => _cts.Token;

    void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        _cts.Cancel();
    }

    public void Dispose()
    {
        _sigint.Dispose();
        _sigterm.Dispose();
        _cts.Dispose();
    }
}
