using System.Globalization;
using System.Net;

namespace IotRealtime.Device.Simulator;

/// <summary>
/// Value parsers shared by <see cref="SimulatorOptions"/> and <see cref="Fleet.FleetOptions"/>: each sets the option
/// on success, or names it in <paramref name="error"/> on failure.
/// </summary>
static class OptionParsing
{
    public static bool TryInt(string name, string value, Action<int> set, out string error)
    {
        error = "";
        if (int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed))
        {
            set(parsed);
            return true;
        }

        error = $"{name} must be a whole number (was '{value}')";
        return false;
    }

    public static bool TryNumber(string name, string value, Action<double> set, out string error)
    {
        error = "";
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && double.IsFinite(parsed))
        {
            set(parsed);
            return true;
        }

        error = $"{name} must be a number (was '{value}')";
        return false;
    }

    /// <summary><c>--source-base</c>: an IPv4 address, or <c>none</c> (null).</summary>
    public static bool TrySourceBase(string value, Action<IPAddress?> set, out string error)
    {
        error = "";
        if (value == "none")
        {
            set(null);
            return true;
        }

        if (IPAddress.TryParse(value, out var source) && source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            set(source);
            return true;
        }

        error = $"--source-base must be an IPv4 address or 'none' (was '{value}')";
        return false;
    }
}
