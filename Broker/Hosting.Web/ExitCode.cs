namespace IotRealtime.Hosting.Web;

/// <summary>What the executables return to the shell (and to an orchestrator deciding whether a restart can help).</summary>
public static class ExitCode
{
    /// <summary>Stopped on SIGINT/SIGTERM, or printed help.</summary>
    public const int Ok = 0;

    /// <summary>Did not start: invalid configuration, a port in use, an upstream that does not answer. Restarting unchanged will not help.</summary>
    public const int StartFailed = 2;
}
