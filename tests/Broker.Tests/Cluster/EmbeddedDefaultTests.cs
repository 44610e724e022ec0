using IotRealtime.Broker.Tests.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Tests.Cluster;

/// <summary>
/// The broker as its own process: with the cluster off (the default) no Orleans assembly is ever loaded, even after
/// clients subscribed and published; with it on, Orleans is there (so the check can fail); a bad Cluster key exits 2.
/// Loaded assemblies are read from the process's memory map (/proc/PID/maps), where the runtime maps each one.
/// </summary>
public sealed class EmbeddedDefaultTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-cluster-proc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task With_the_cluster_off_no_Orleans_assembly_is_loaded()
    {
        var port = BrokerProcess.FreePort();
        await using var broker = await BrokerProcess.StartAsync(Path.Combine(_dir, "off"), port);
        using (var client = new MqttClientFactory().CreateMqttClient())
        {
            var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            client.ApplicationMessageReceivedAsync += _ =>
            {
                received.TrySetResult();
                return Task.CompletedTask;
            };
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId("embedded").Build());
            await client.SubscribeAsync("embedded/t", MqttQualityOfServiceLevel.AtLeastOnce);
            await client.PublishStringAsync("embedded/t", "x", MqttQualityOfServiceLevel.AtLeastOnce);
            await received.Task.WaitAsync(Timeouts.Default);
            await client.DisconnectAsync();
        }
        var maps = await File.ReadAllTextAsync($"/proc/{broker.Id}/maps");
        Assert.Contains("IotRealtime.Broker.Engine.dll", maps, StringComparison.Ordinal);
        Assert.DoesNotContain("Orleans", maps, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_cluster_on_the_process_hosts_an_Orleans_silo()
    {
        var port = BrokerProcess.FreePort();
        await using var broker = await BrokerProcess.StartAsync(Path.Combine(_dir, "on"), port,
            "Cluster:Enabled=true", "Cluster:NodeId=solo", $"Cluster:SiloPort={BrokerProcess.FreePort()}");
        var maps = await File.ReadAllTextAsync($"/proc/{broker.Id}/maps");
        Assert.Contains("Orleans.Runtime.dll", maps, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_cluster_setting_exits_2_naming_the_key()
    {
        await using var broker = ExternalProcess.Start("dotnet", Path.Combine(AppContext.BaseDirectory, "iotrealtime-broker.dll"),
            "--Listeners:BindAddress=127.0.0.1", "--Listeners:MqttPort=0", "--Listeners:HttpPort=0", $"--Data:Directory={Path.Combine(_dir, "bad")}",
            "--Cluster:Enabled=true", "--Cluster:Membership=Postgres");
        Assert.Equal(2, await broker.WaitForExitAsync(Timeouts.Default));
        Assert.Contains("Cluster:NodeId", broker.Output, StringComparison.Ordinal);
        Assert.Contains("Cluster:ConnectionString", broker.Output, StringComparison.Ordinal);
    }
}
