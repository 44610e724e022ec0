namespace IotRealtime.Broker.Host.Configuration;

/// <summary>The configuration is unusable; <see cref="Errors"/> holds one line per problem, each naming its key.</summary>
public sealed class BrokerConfigurationException : Exception
{
    public BrokerConfigurationException(IReadOnlyList<string> errors)
        : base("Invalid broker configuration:" + string.Concat(errors.Select(e => Environment.NewLine + "  - " + e)))
    {
        Errors = errors;
    }

    public IReadOnlyList<string> Errors { get; }
}
