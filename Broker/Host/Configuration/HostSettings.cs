using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Persistence;
using IotRealtime.Broker.Host.Auth;
using IotRealtime.Broker.Host.Listeners;
using IotRealtime.Broker.Host.Operations;
using IotRealtime.Broker.Host.Tls;
using IotRealtime.Broker.Kafka;
using IotRealtime.Hosting.Configuration;
using Microsoft.Extensions.Configuration;

namespace IotRealtime.Broker.Host.Configuration;

/// <summary>
/// Everything the host reads from configuration, bound, validated and loaded (certificates, password file, ACL rules)
/// in one pass that collects every problem, so a bad configuration is reported once, in full.
/// </summary>
public sealed class HostSettings
{
    HostSettings() { }

    public required BrokerOptions Broker { get; init; }

    public required ListenerOptions Listeners { get; init; }

    public required TlsOptions Tls { get; init; }

    public required AuthOptions Auth { get; init; }

    public required DataOptions Data { get; init; }

    public required AdminOptions Admin { get; init; }

    /// <summary>The embedded store; its directory defaults to {Data:Directory}/store.</summary>
    public required StoreOptions Store { get; init; }

    /// <summary>Forwarding into Kafka; off when Kafka:BootstrapServers is empty.</summary>
    public required KafkaOptions Kafka { get; init; }

    /// <summary>SSE, WebSocket and dashboard served in-process; off with Bridges:Enabled=false.</summary>
    public required IotRealtime.Bridges.Configuration.BridgesOptions Bridges { get; init; }

    /// <summary>Several broker processes as one broker; off unless Cluster:Enabled.</summary>
    public required BrokerClusterOptions Cluster { get; init; }

    /// <summary>Null when TLS is off.</summary>
    public TlsSetup? TlsSetup { get; init; }

    /// <summary>Null when Auth:PasswordFile is unset.</summary>
    public PasswordFile? Passwords { get; init; }

    public required IReadOnlyList<AclRule> AclRules { get; init; }

    public required AclPermission AclDefault { get; init; }

    /// <summary>The data directory, made absolute and created.</summary>
    public required string DataDirectory { get; init; }

    /// <exception cref="BrokerConfigurationException">Listing every problem, each naming its key.</exception>
    public static HostSettings Load(IConfiguration configuration)
    {
        var errors = new List<string>();
        var broker = StrictBinder.Bind<BrokerOptions>(configuration, "Broker", errors);
        var listeners = StrictBinder.Bind<ListenerOptions>(configuration, ListenerOptions.Section, errors);
        var tls = StrictBinder.Bind<TlsOptions>(configuration, TlsOptions.Section, errors);
        var auth = StrictBinder.Bind<AuthOptions>(configuration, AuthOptions.Section, errors);
        var data = StrictBinder.Bind<DataOptions>(configuration, DataOptions.Section, errors);
        var admin = StrictBinder.Bind<AdminOptions>(configuration, AdminOptions.Section, errors);
        var store = StrictBinder.Bind<StoreOptions>(configuration, "Store", errors);
        var kafka = StrictBinder.Bind<KafkaOptions>(configuration, KafkaOptions.Section, errors);
        var bridges = IotRealtime.Bridges.Configuration.BridgesOptions.Load(configuration, errors);
        var cluster = StrictBinder.Bind<BrokerClusterOptions>(configuration, BrokerClusterOptions.Section, errors);
        var storeDirectorySet = !string.IsNullOrWhiteSpace(configuration["Store:Directory"]);

        errors.AddRange(broker.Validate());
        errors.AddRange(admin.Validate());
        errors.AddRange(store.Validate());
        errors.AddRange(kafka.Validate());
        errors.AddRange(cluster.Validate());
        errors.AddRange(listeners.Validate(tls.Enabled));
        var tlsSetup = TlsSetup.Load(tls, errors);

        PasswordFile? passwords = null;
        if (!string.IsNullOrWhiteSpace(auth.PasswordFile))
        {
            if (!File.Exists(auth.PasswordFile)) errors.Add($"{AuthOptions.Section}:PasswordFile: file '{auth.PasswordFile}' does not exist (create it with 'iotrealtime-broker passwd {auth.PasswordFile} <username>').");
            else passwords = PasswordFile.Load(auth.PasswordFile, $"{AuthOptions.Section}:PasswordFile", errors);
        }
        if (!auth.EffectiveAllowAnonymous && passwords is null && !(auth.UseCertificateIdentity && tls.ClientCertificateMode != TlsClientCertificateMode.None))
        {
            errors.Add($"{AuthOptions.Section}:AllowAnonymous is false but no client could ever authenticate: set {AuthOptions.Section}:PasswordFile, or require client certificates (Tls:ClientCertificateMode) with {AuthOptions.Section}:UseCertificateIdentity.");
        }

        var rules = AclRuleSet.Load(auth, errors);

        var dataDirectory = string.Empty;
        if (string.IsNullOrWhiteSpace(data.Directory))
        {
            errors.Add($"{DataOptions.Section}:Directory must not be empty.");
        }
        else if (errors.Count == 0)
        {
            // Created only for a configuration that is otherwise good, so a typo does not leave directories behind.
            try
            {
                dataDirectory = Directory.CreateDirectory(Path.GetFullPath(data.Directory)).FullName;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                errors.Add($"{DataOptions.Section}:Directory: cannot create '{data.Directory}': {e.Message}");
            }
        }

        if (!storeDirectorySet && dataDirectory.Length > 0)
        {
            store.Directory = Path.Combine(dataDirectory, "store");
        }

        if (errors.Count > 0) throw new BrokerConfigurationException(errors);

        return new HostSettings
        {
            Broker = broker,
            Listeners = listeners,
            Tls = tls,
            Auth = auth,
            Data = data,
            Admin = admin,
            Store = store,
            Kafka = kafka,
            Bridges = bridges,
            Cluster = cluster,
            TlsSetup = tlsSetup,
            Passwords = passwords,
            AclRules = rules,
            AclDefault = AclAuthorizer.EffectiveDefault(auth.AclDefault, rules.Count),
            DataDirectory = dataDirectory,
        };
    }
}
