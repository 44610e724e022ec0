using System.Text.RegularExpressions;
using System.Xml.Linq;
using IotRealtime.Broker.Host.Cli;
using IotRealtime.Broker.Host.Configuration;
using IotRealtime.Broker.Kafka;
using IotRealtime.Telemetry.Configuration;
using Microsoft.Extensions.Configuration;
using IotRealtime.Broker.Cluster;
using IotRealtime.Broker.Tests.Infrastructure;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace IotRealtime.Broker.Tests.Deployment;

/// <summary>
/// compose/docker-compose.yml cannot run here (no Docker engine), so it is checked statically: structure, dependencies,
/// health checks, ports, images built from real projects, and the broker's environment run through its own validation.
/// </summary>
public sealed partial class ComposeFileTests : IDisposable
{
    readonly string _dataDir = Directory.CreateTempSubdirectory("iotrt-compose-").FullName;
    readonly string _root = RepositoryRoot();
    readonly Dictionary<string, Dictionary<object, object>> _services;
    readonly Dictionary<object, object> _networks;

    public ComposeFileTests()
    {
        var text = File.ReadAllText(Path.Combine(_root, "compose", "docker-compose.yml"));
        // MergingParser: the cluster nodes share their settings through YAML merge keys (<<), as compose reads them
        var document = new DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(new MergingParser(new Parser(new StringReader(text))));
        _services = ((Dictionary<object, object>)document["services"]).ToDictionary(s => (string)s.Key, s => (Dictionary<object, object>)s.Value);
        _networks = (Dictionary<object, object>)document["networks"];
    }

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "IotRealtime.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("IotRealtime.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)(:-(?<default>[^}]*))?\}")]
    private static partial Regex Interpolation();

    /// <summary>What compose makes of a value when no variable is set: ${X:-default} becomes default, $$ a single $.</summary>
    static string Resolve(string value) => Interpolation().Replace(value, m => m.Groups["default"].Value).Replace("$$", "$", StringComparison.Ordinal);

    Dictionary<string, string> Environment(string service) => _services[service].TryGetValue("environment", out var env)
        ? ((Dictionary<object, object>)env).ToDictionary(e => (string)e.Key, e => Resolve((string)e.Value))
        : [];

    static bool IsOneShot(Dictionary<object, object> service) => service.TryGetValue("restart", out var restart) && (string)restart == "no";

    [Fact]
    public void The_deployment_has_Kafka_in_KRaft_mode_PostgreSQL_15_InfluxDB_2_and_our_services()
    {
        Assert.Subset(_services.Keys.ToHashSet(), new HashSet<string> { "kafka", "postgres", "influxdb", "broker", "telemetry", "bridges", "simulator", "cluster-db-init", "broker-1", "broker-2", "broker-3", "haproxy" });
        Assert.StartsWith("apache/kafka:", (string)_services["kafka"]["image"]);
        Assert.Equal("postgres:15", (string)_services["postgres"]["image"]);
        Assert.StartsWith("influxdb:2", (string)_services["influxdb"]["image"]);
        var kafka = Environment("kafka");
        Assert.Equal("broker,controller", kafka["KAFKA_PROCESS_ROLES"]);
        Assert.Contains("PLAINTEXT://kafka:9092", kafka["KAFKA_ADVERTISED_LISTENERS"]);
        Assert.Equal(["scale-out"], ((List<object>)_services["bridges"]["profiles"]).Cast<string>());
        Assert.Equal(["load"], ((List<object>)_services["simulator"]["profiles"]).Cast<string>());
        foreach (var name in ClusterNodes.Append("cluster-db-init").Append("haproxy"))
        {
            Assert.Equal(["cluster"], ((List<object>)_services[name]["profiles"]).Cast<string>());
        }
        Assert.False(_services["broker"].ContainsKey("profiles"), "the broker runs in the default profile");
        Assert.False(_services["telemetry"].ContainsKey("profiles"), "telemetry runs in the default profile");
    }

    [Fact]
    public void Every_dependency_names_a_defined_service_that_is_healthy_or_has_completed()
    {
        foreach (var (name, service) in _services)
        {
            if (!service.TryGetValue("depends_on", out var dependsOn)) continue;
            foreach (var (target, spec) in (Dictionary<object, object>)dependsOn)
            {
                Assert.True(_services.TryGetValue((string)target, out var dependency), $"{name} depends on undefined service '{target}'");
                var condition = (string)((Dictionary<object, object>)spec)["condition"];
                if (condition == "service_healthy") Assert.True(dependency.ContainsKey("healthcheck"), $"{name} waits for {target} to be healthy, but {target} has no healthcheck");
                else if (condition == "service_completed_successfully") Assert.True(IsOneShot(dependency), $"{name} waits for {target} to complete, but {target} is not a one-shot");
                else Assert.Fail($"{name} depends on {target} with condition '{condition}'; expected service_healthy or service_completed_successfully");
            }
        }
        Assert.Equal("service_healthy", (string)((Dictionary<object, object>)((Dictionary<object, object>)_services["telemetry"]["depends_on"])["postgres"])["condition"]);
    }

    [Fact]
    public void Every_service_has_a_healthcheck_or_is_a_one_shot()
    {
        foreach (var (name, service) in _services)
        {
            Assert.True(service.ContainsKey("healthcheck") || IsOneShot(service), $"{name} has no healthcheck and is not a one-shot (restart: \"no\")");
        }
        Assert.Contains("pg_isready", string.Join(' ', ((List<object>)((Dictionary<object, object>)_services["postgres"]["healthcheck"])["test"]).Cast<string>()));
    }

    [Fact]
    public void Published_host_ports_do_not_collide()
    {
        var owners = new Dictionary<string, string>();
        foreach (var (name, service) in _services)
        {
            if (!service.TryGetValue("ports", out var ports)) continue;
            foreach (string mapping in (List<object>)ports)
            {
                var parts = mapping.Split(':');
                Assert.True(parts.Length >= 2, $"{name}: publish '{mapping}' with an explicit host port");
                var hostPort = parts[^2];
                Assert.True(owners.TryAdd(hostPort, name), $"host port {hostPort} published by both {owners.GetValueOrDefault(hostPort)} and {name}");
            }
        }
        Assert.Equal("broker", owners["1883"]);
        Assert.Equal("telemetry", owners["8081"]);
    }

    [Fact]
    public void Built_services_publish_existing_projects_under_their_executable_names()
    {
        var dockerfile = File.ReadAllText(Path.Combine(_root, "compose", "Dockerfile"));
        Assert.Contains("dotnet publish", dockerfile);
        foreach (var (name, service) in _services)
        {
            if (!service.TryGetValue("build", out var buildNode)) continue;
            var build = (Dictionary<object, object>)buildNode;
            var context = Path.GetFullPath(Path.Combine(_root, "compose", (string)build["context"]));
            Assert.Equal(_root, context.TrimEnd(Path.DirectorySeparatorChar));
            Assert.True(File.Exists(Path.Combine(context, (string)build["dockerfile"])), $"{name}: dockerfile {build["dockerfile"]} not found");
            var args = (Dictionary<object, object>)build["args"];
            var project = Directory.GetFiles(Path.Combine(context, (string)args["PROJECT"]), "*.csproj").Single();
            var assemblyName = XDocument.Load(project).Descendants("AssemblyName").Single().Value;
            Assert.Equal(assemblyName, (string)args["APP"]);
        }
    }

    /// <summary>The broker reads IOTRT_-prefixed variables; here they go through the broker's own validation.</summary>
    static IConfiguration TelemetryConfiguration(Dictionary<string, string> environment) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(environment.Select(e => KeyValuePair.Create(e.Key.Replace("__", ":", StringComparison.Ordinal), (string?)e.Value)))
            .Build();

    static IConfiguration BrokerConfiguration(Dictionary<string, string> environment, string dataDirectory)
    {
        var values = environment.ToDictionary(e => e.Key[CommandLine.EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal), e => (string?)e.Value);
        // /data is the container's volume; here, a temp directory stands in for it.
        values["Data:Directory"] = dataDirectory;
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }

    [Fact]
    public void The_broker_environment_is_valid_broker_configuration_that_forwards_to_the_compose_Kafka()
    {
        var environment = Environment("broker");
        Assert.All(environment.Keys, key => Assert.StartsWith(CommandLine.EnvironmentPrefix, key));

        var settings = HostSettings.Load(BrokerConfiguration(environment, _dataDir));

        Assert.Equal("kafka:9092", settings.Kafka.BootstrapServers);
        Assert.Equal("presence", settings.Kafka.PresenceTopic);
        var rule = Assert.Single(settings.Kafka.Rules);
        Assert.Equal(KafkaForwardMode.Durable, rule.Mode);
        Assert.Equal("0.0.0.0", settings.Listeners.BindAddress);

        // The check has teeth: one misspelt key fails it, by name.
        environment["IOTRT_Kafka__BootstrapSrvers"] = "kafka:9092";
        var error = Assert.Throws<BrokerConfigurationException>(() => HostSettings.Load(BrokerConfiguration(environment, _dataDir)));
        Assert.Contains("Kafka:BootstrapSrvers", error.Message);
    }

    [Fact]
    public void Telemetry_reads_the_topic_the_broker_forwards_to_and_writes_to_the_compose_databases()
    {
        var telemetry = Environment("telemetry");
        // Telemetry's own loader, as the executable runs it (plain Telemetry__ variables): a misspelt key fails by name.
        var settings = TelemetrySettings.Load(TelemetryConfiguration(telemetry));
        Assert.True(settings.HasSink("postgres") && settings.HasSink("influxdb"));
        var misspelt = new Dictionary<string, string>(telemetry) { ["Telemetry__Postgres__RetentionDayz"] = "30" };
        var error = Assert.Throws<TelemetryConfigurationException>(() => TelemetrySettings.Load(TelemetryConfiguration(misspelt)));
        Assert.Contains("Telemetry:Postgres:RetentionDayz", error.Message);
        Assert.Equal(["postgres", "influxdb"], telemetry.Where(e => e.Key.StartsWith("Telemetry__Sinks__")).OrderBy(e => e.Key).Select(e => e.Value));

        var broker = HostSettings.Load(BrokerConfiguration(Environment("broker"), _dataDir));
        Assert.Equal(broker.Kafka.BootstrapServers, telemetry["Telemetry__Kafka__BootstrapServers"]);
        Assert.Contains(telemetry["Telemetry__Kafka__Topics__0"], broker.Kafka.Rules.Select(r => r.Topic));

        var postgres = Environment("postgres");
        var connection = telemetry["Telemetry__Postgres__ConnectionString"];
        Assert.Contains("Host=postgres", connection);
        Assert.Contains($"Username={postgres["POSTGRES_USER"]}", connection);
        Assert.Contains($"Password={postgres["POSTGRES_PASSWORD"]}", connection);
        Assert.Contains($"Database={postgres["POSTGRES_DB"]}", connection);

        var influx = Environment("influxdb");
        Assert.Equal("2", telemetry["Telemetry__Influx__Version"]);
        Assert.Equal("http://influxdb:8086", telemetry["Telemetry__Influx__Url"]);
        Assert.Equal(influx["DOCKER_INFLUXDB_INIT_ORG"], telemetry["Telemetry__Influx__Org"]);
        Assert.Equal(influx["DOCKER_INFLUXDB_INIT_BUCKET"], telemetry["Telemetry__Influx__Bucket"]);
        Assert.Equal(influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"], telemetry["Telemetry__Influx__Token"]);
    }

    [Fact]
    public void The_topics_the_broker_forwards_to_are_created_before_it_starts()
    {
        var init = string.Join('\n', ((List<object>)_services["kafka-init"]["command"]).Cast<string>());
        var broker = HostSettings.Load(BrokerConfiguration(Environment("broker"), _dataDir));
        foreach (var topic in broker.Kafka.Rules.Select(r => r.Topic).Append(broker.Kafka.DefaultTopic).Append(broker.Kafka.PresenceTopic!))
        {
            Assert.Matches($@"(for topic in [^;\n]*\b{Regex.Escape(topic)}\b|--topic {Regex.Escape(topic)}\b)", init);
        }
    }

    static readonly string[] ClusterNodes = ["broker-1", "broker-2", "broker-3"];

    [Fact]
    public void Each_cluster_node_is_valid_broker_configuration_with_PostgreSQL_membership_in_a_database_of_its_own()
    {
        var subnet = (string)((Dictionary<object, object>)((List<object>)((Dictionary<object, object>)((Dictionary<object, object>)_networks["cluster"])["ipam"])["config"])[0])["subnet"];
        var prefix = subnet[..(subnet.LastIndexOf('.') + 1)];
        var single = HostSettings.Load(BrokerConfiguration(Environment("broker"), _dataDir));
        var postgres = Environment("postgres");
        var nodeIds = new HashSet<string>();
        var volumes = new HashSet<string>();
        foreach (var name in ClusterNodes)
        {
            var environment = Environment(name);
            Assert.All(environment.Keys, key => Assert.StartsWith(CommandLine.EnvironmentPrefix, key));
            var settings = HostSettings.Load(BrokerConfiguration(environment, _dataDir));
            var cluster = settings.Cluster;
            Assert.True(cluster.Enabled, $"{name}: Cluster:Enabled");
            Assert.Equal(ClusterMembershipKind.Postgres, cluster.Membership);
            Assert.True(nodeIds.Add(cluster.NodeId), $"{name}: Cluster:NodeId '{cluster.NodeId}' is not unique");

            // the silo listens on its advertised address: the node's fixed address on the cluster network
            var networks = (Dictionary<object, object>)_services[name]["networks"];
            Assert.True(networks.ContainsKey("default"), $"{name} must reach kafka and postgres on the default network");
            var address = (string)((Dictionary<object, object>)networks["cluster"])["ipv4_address"];
            Assert.Equal(address, cluster.AdvertisedAddress);
            Assert.StartsWith(prefix, address);

            // the membership table lives in a database of its own on the compose PostgreSQL, created before the node starts
            var connection = cluster.ConnectionString!;
            Assert.Contains("Host=postgres", connection);
            Assert.Contains($"Username={postgres["POSTGRES_USER"]}", connection);
            Assert.Contains($"Password={postgres["POSTGRES_PASSWORD"]}", connection);
            Assert.Contains("Database=iotrealtime_cluster", connection);
            Assert.NotEqual("iotrealtime_cluster", postgres["POSTGRES_DB"]);
            var dependsOn = (Dictionary<object, object>)_services[name]["depends_on"];
            Assert.Equal("service_completed_successfully", (string)((Dictionary<object, object>)dependsOn["cluster-db-init"])["condition"]);

            // each node forwards what it accepts to the compose Kafka, as the single broker does
            Assert.Equal(single.Kafka.BootstrapServers, settings.Kafka.BootstrapServers);
            Assert.Equal(single.Kafka.Rules.Select(r => (r.Filter, r.Topic, r.Mode)), settings.Kafka.Rules.Select(r => (r.Filter, r.Topic, r.Mode)));
            Assert.Equal(single.Kafka.DefaultTopic, settings.Kafka.DefaultTopic);
            Assert.Equal(single.Kafka.PresenceTopic, settings.Kafka.PresenceTopic);

            Assert.Contains("/readyz", string.Join(' ', ((List<object>)((Dictionary<object, object>)_services[name]["healthcheck"])["test"]).Cast<string>()));
            Assert.True(volumes.Add(((List<object>)_services[name]["volumes"]).Cast<string>().Single()), $"{name} shares its data volume");
        }

        var init = Environment("cluster-db-init");
        Assert.Equal(postgres["POSTGRES_PASSWORD"], init["PGPASSWORD"]);
        Assert.Contains("CREATE DATABASE iotrealtime_cluster", string.Join('\n', ((List<object>)_services["cluster-db-init"]["command"]).Cast<string>()));

        // The check has teeth: a node without its connection string fails by the key's name.
        var broken = Environment("broker-1");
        broken.Remove("IOTRT_Cluster__ConnectionString");
        var error = Assert.Throws<BrokerConfigurationException>(() => HostSettings.Load(BrokerConfiguration(broken, _dataDir)));
        Assert.Contains("Cluster:ConnectionString", error.Message);
    }

    [GeneratedRegex(@"^\s*server\s+(?<name>\S+)\s+(?<address>[\d.]+):(?<port>\d+)\s+check(?<rest>.*)$", RegexOptions.Multiline)]
    private static partial Regex HaproxyServer();

    [GeneratedRegex(@"^\s*timeout\s+(?<which>client|server)\s+(?<value>\d+)(?<unit>ms|s|m|h)?\s*$", RegexOptions.Multiline)]
    private static partial Regex HaproxyTimeout();

    [Fact]
    public void HAProxy_balances_MQTT_over_the_ready_nodes_with_timeouts_above_the_keep_alive()
    {
        var config = File.ReadAllText(Path.Combine(_root, "compose", "haproxy.cfg"));
        var haproxy = _services["haproxy"];
        Assert.Contains("./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro", ((List<object>)haproxy["volumes"]).Cast<string>());
        var dependsOn = (Dictionary<object, object>)haproxy["depends_on"];
        Assert.Equal(ClusterNodes.Order(), dependsOn.Keys.Cast<string>().Order());
        Assert.Contains("mode tcp", config);
        Assert.Contains("option httpchk GET /readyz", config);
        Assert.Contains("http-check expect status 200", config);

        // every node is a server of the MQTT backend at its cluster address and MQTT port, health-checked on its HTTP port
        var servers = HaproxyServer().Matches(config).Select(m => (Address: m.Groups["address"].Value, Port: int.Parse(m.Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture), Options: m.Groups["rest"].Value)).ToList();
        foreach (var name in ClusterNodes)
        {
            var settings = HostSettings.Load(BrokerConfiguration(Environment(name), _dataDir));
            var address = settings.Cluster.AdvertisedAddress;
            Assert.Contains(servers, s => s.Address == address && s.Port == settings.Listeners.MqttPort && s.Options.Contains($"port {settings.Listeners.HttpPort}", StringComparison.Ordinal));
            Assert.Contains(servers, s => s.Address == address && s.Port == settings.Listeners.HttpPort);

            // an idle MQTT connection must outlive its keep-alive (1.5x the broker's cap) in HAProxy
            Assert.True(settings.Broker.MaxKeepAlive > 0, $"{name}: Broker:MaxKeepAlive caps what HAProxy's timeouts must exceed");
            var timeouts = HaproxyTimeout().Matches(config).ToList();
            Assert.Contains(timeouts, t => t.Groups["which"].Value == "client");
            Assert.Contains(timeouts, t => t.Groups["which"].Value == "server");
            Assert.All(timeouts, t => Assert.True(Seconds(t) > settings.Broker.MaxKeepAlive * 1.5, $"timeout {t.Groups["which"].Value} {t.Groups["value"].Value}{t.Groups["unit"].Value} is not above 1.5 x Broker:MaxKeepAlive ({settings.Broker.MaxKeepAlive} s)"));
        }
        Assert.Contains("1884:1883", ((List<object>)haproxy["ports"]).Cast<string>());
    }

    static double Seconds(Match timeout)
    {
        var value = double.Parse(timeout.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture);
        return timeout.Groups["unit"].Value switch { "ms" => value / 1000, "m" => value * 60, "h" => value * 3600, _ => value };
    }

    [Fact]
    public async Task HAProxy_accepts_its_configuration()
    {
        var haproxy = ExternalTools.Require("haproxy", "haproxy");
        await using var check = ExternalProcess.Start(haproxy, "-c", "-f", Path.Combine(_root, "compose", "haproxy.cfg"));
        var exitCode = await check.WaitForExitAsync(Timeouts.Default);
        Assert.True(exitCode == 0, $"haproxy -c exited with {exitCode}:\n{check.Output}");
        Assert.Contains("Configuration file is valid", check.Output);
    }
}
