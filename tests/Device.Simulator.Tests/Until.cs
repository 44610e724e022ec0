namespace IotRealtime.Device.Simulator.Tests;

/// <summary>Waits on a condition with a deadline, never a fixed sleep.</summary>
internal static class Until
{
    public static async Task TrueAsync(Func<bool> condition, string what, double seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline) throw new TimeoutException($"timed out after {seconds} s waiting for {what}");
            await Task.Delay(20);
        }
    }
}
