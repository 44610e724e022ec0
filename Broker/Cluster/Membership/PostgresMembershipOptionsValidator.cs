using Microsoft.Extensions.Options;
using Orleans;

namespace IotRealtime.Broker.Cluster.Membership;

/// <summary>Orleans runs its configuration validators as the silo is built: a bad connection string stops it there.</summary>
sealed class PostgresMembershipOptionsValidator(IOptions<PostgresMembershipOptions> options) : IConfigurationValidator
{
    public void ValidateConfiguration() => PostgresMembershipCheck.ThrowIfInvalid(options.Value);
}
