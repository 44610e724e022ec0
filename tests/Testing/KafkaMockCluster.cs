using System.Runtime.InteropServices;
using System.Text;

namespace IotRealtime.Testing;

/// <summary>
/// librdkafka's built-in mock cluster: a real Kafka-protocol server on loopback, in memory, from the native librdkafka
/// that Confluent.Kafka loads. Used where no Docker engine is reachable for Testcontainers. It has no CreateTopics
/// admin call, so topics are made with <see cref="CreateTopic"/>.
/// </summary>
public sealed class KafkaMockCluster : IAsyncDisposable
{
    const int ProducerType = 0; // RD_KAFKA_PRODUCER

    readonly IntPtr _handle;
    readonly IntPtr _cluster;
    readonly int _brokerCount;
    readonly Lock _gate = new();
    bool _disposed;

    KafkaMockCluster(IntPtr handle, IntPtr cluster, int brokerCount)
    {
        _handle = handle;
        _cluster = cluster;
        _brokerCount = brokerCount;
        BootstrapServers = Marshal.PtrToStringUTF8(Native.rd_kafka_mock_cluster_bootstraps(cluster))
            ?? throw new InvalidOperationException("rd_kafka_mock_cluster_bootstraps returned null.");
        // Without these, consumer groups wait 3 s to form.
        Native.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        Native.rd_kafka_mock_set_controller_id(cluster, 1);
    }

    /// <summary>host:port,... of the mock brokers.</summary>
    public string BootstrapServers { get; }

    public static KafkaMockCluster Start(int brokers = 1)
    {
        var conf = Native.rd_kafka_conf_new();
        var error = new StringBuilder(512);
        var handle = Native.rd_kafka_new(ProducerType, conf, error, (UIntPtr)error.Capacity);
        if (handle == IntPtr.Zero)
        {
            Native.rd_kafka_conf_destroy(conf);
            throw new InvalidOperationException($"rd_kafka_new failed: {error}");
        }
        var cluster = Native.rd_kafka_mock_cluster_new(handle, brokers);
        if (cluster == IntPtr.Zero)
        {
            Native.rd_kafka_destroy(handle);
            throw new InvalidOperationException("rd_kafka_mock_cluster_new failed.");
        }
        return new KafkaMockCluster(handle, cluster, brokers);
    }

    public void CreateTopic(string name, int partitions = 1)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var err = Native.rd_kafka_mock_topic_create(_cluster, name, partitions, Math.Min(_brokerCount, 3));
            if (err != 0) throw new InvalidOperationException($"rd_kafka_mock_topic_create({name}) failed: error {err}.");
        }
    }

    /// <summary>Disconnects every broker and refuses new connections: Kafka is down.</summary>
    public void SetBrokersDown() => ForEachBroker(Native.rd_kafka_mock_broker_set_down, "down");

    public void SetBrokersUp() => ForEachBroker(Native.rd_kafka_mock_broker_set_up, "up");

    void ForEachBroker(Func<IntPtr, int, int> action, string what)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            for (var id = 1; id <= _brokerCount; id++)
            {
                var err = action(_cluster, id);
                if (err != 0) throw new InvalidOperationException($"Setting mock broker {id} {what} failed: error {err}.");
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return ValueTask.CompletedTask;
            _disposed = true;
        }
        // Destroying joins librdkafka threads; off the test's thread so a slow teardown cannot block a sync context.
        return new ValueTask(Task.Run(() =>
        {
            Native.rd_kafka_mock_cluster_destroy(_cluster);
            Native.rd_kafka_destroy(_handle);
        }));
    }

    static class Native
    {
        const string Library = "librdkafka";

        // librdkafka.so links libsasl2.so.3, absent on some Debian images; Confluent.Kafka then falls back to the
        // redist's centos8 build, and so does this.
        static Native() => NativeLibrary.SetDllImportResolver(typeof(Native).Assembly, (name, assembly, path) =>
        {
            if (name != Library) return IntPtr.Zero;
            if (NativeLibrary.TryLoad(name, assembly, path, out var handle)) return handle;
            var native = Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier.StartsWith("linux-arm64", StringComparison.Ordinal) ? "linux-arm64" : "linux-x64", "native");
            foreach (var candidate in new[] { "centos8-librdkafka.so", "librdkafka.so" })
            {
                if (NativeLibrary.TryLoad(Path.Combine(native, candidate), out handle)) return handle;
            }
            return IntPtr.Zero;
        });

        [DllImport(Library)] public static extern IntPtr rd_kafka_conf_new();
        [DllImport(Library)] public static extern void rd_kafka_conf_destroy(IntPtr conf);
        [DllImport(Library)] public static extern IntPtr rd_kafka_new(int type, IntPtr conf, StringBuilder errstr, UIntPtr errstrSize);
        [DllImport(Library)] public static extern void rd_kafka_destroy(IntPtr rk);
        [DllImport(Library)] public static extern IntPtr rd_kafka_mock_cluster_new(IntPtr rk, int brokerCount);
        [DllImport(Library)] public static extern void rd_kafka_mock_cluster_destroy(IntPtr cluster);
        [DllImport(Library)] public static extern IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr cluster);
        [DllImport(Library)] public static extern void rd_kafka_mock_group_initial_rebalance_delay_ms(IntPtr cluster, int delayMs);
        [DllImport(Library)] public static extern int rd_kafka_mock_set_controller_id(IntPtr cluster, int controllerId);
        [DllImport(Library, CharSet = CharSet.Ansi, BestFitMapping = false)] public static extern int rd_kafka_mock_topic_create(IntPtr cluster, string topic, int partitions, int replicationFactor);
        [DllImport(Library)] public static extern int rd_kafka_mock_broker_set_down(IntPtr cluster, int brokerId);
        [DllImport(Library)] public static extern int rd_kafka_mock_broker_set_up(IntPtr cluster, int brokerId);
    }
}
