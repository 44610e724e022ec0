using System.Globalization;
using System.Net;
using MQTTnet;
using MQTTnet.Diagnostics.PacketInspection;
using MQTTnet.Protocol;

namespace IotRealtime.Device.Simulator.Fleet;

/// <summary>
/// One simulated device: connects when the shared token bucket allows, subscribes to its command topic, publishes
/// telemetry with increasing sequence numbers, and on a lost connection reconnects after a backoff chosen from the
/// disconnect reason (following an MQTT 5 Server Reference to another loopback broker). A sequence number is used
/// again until its publish completes, so every number below <see cref="Sent"/> was acknowledged (QoS 1/2) or written (QoS 0).
/// </summary>
public sealed class FleetDevice(
    int index,
    FleetOptions options,
    FleetConnectionFactory factory,
    TokenBucket bucket,
    ReconnectBackoff backoff,
    TelemetryPayload payload,
    FleetCounters counters,
    IPEndPoint? source,
    TimeProvider time)
{
    readonly string _clientId = options.ClientId(index);
    readonly Random _random = new(index);
    IPEndPoint? _redirect;
    long _sent;

    public int Index => index;

    /// <summary>Messages completed; their sequence numbers are 0 .. Sent − 1.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    public async Task RunAsync(CancellationToken stop)
    {
        var attempt = 0;
        var first = true;
        var topic = string.Format(CultureInfo.InvariantCulture, options.TopicPattern, _clientId);
        while (!stop.IsCancellationRequested && !Done)
        {
            try
            {
                await bucket.TakeAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            using var client = factory.ClientFactory.CreateMqttClient();
            var lost = new TaskCompletionSource<(DisconnectKind Kind, string Reason)>(TaskCreationOptions.RunContinuationsAsynchronously);
            string? serverReference = null;
            if (options.Mqtt5)
            {
                client.InspectPacketAsync += e =>
                {
                    if (e.Direction == MqttPacketFlowDirection.Inbound && e.Buffer.Length > 0 && e.Buffer[0] == 0xE0
                        && DisconnectPacketReader.TryRead(e.Buffer, out _, out var reference))
                    {
                        serverReference = reference;
                    }

                    return Task.CompletedTask;
                };
            }

            client.ApplicationMessageReceivedAsync += _ =>
            {
                counters.CommandReceived();
                return Task.CompletedTask;
            };

            counters.ConnectAttempt();
            var started = time.GetTimestamp();
            DisconnectKind failureKind;
            string failure;
            try
            {
                // Clean on the very first connect when asked for a persistent session too, so a run starts from nothing.
                var result = await client.ConnectAsync(factory.Build(_clientId, source, _redirect ?? options.TargetFor(index), cleanStart: !options.PersistentSession), stop).ConfigureAwait(false);
                if (result.ResultCode == MqttClientConnectResultCode.Success)
                {
                    client.DisconnectedAsync += e =>
                    {
                        lost.TrySetResult((e.Reason == MqttClientDisconnectReason.NormalDisconnection ? DisconnectKind.Failure : ReconnectBackoff.Classify((int)e.Reason),
                            e.Reason == MqttClientDisconnectReason.NormalDisconnection ? $"connection lost: {e.Exception?.GetType().Name ?? "closed"}" : $"disconnect: {e.Reason}"));
                        return Task.CompletedTask;
                    };
                    counters.Connected(first, time.GetElapsedTime(started));
                    first = false;
                    attempt = 0;
                    var (kind, reason, unexpected) = await ConnectedAsync(client, topic, lost.Task, stop).ConfigureAwait(false);
                    counters.Disconnected(unexpected, unexpected ? reason : null);
                    if (!unexpected) return;
                    failureKind = kind;
                    failure = reason;
                }
                else
                {
                    failureKind = ReconnectBackoff.Classify((int)result.ResultCode);
                    failure = $"connack: {result.ResultCode}";
                    serverReference ??= result.ServerReference;
                    counters.ConnectFailed(failure);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or System.Net.Sockets.SocketException or IOException or InvalidOperationException)
            {
                failureKind = DisconnectKind.Failure;
                failure = $"connect: {Describe(e)}";
                counters.ConnectFailed(failure);
            }

            if (failureKind == DisconnectKind.Redirected && options.WebSocketUrl is null
                && DisconnectPacketReader.LoopbackTarget(serverReference, options.Port) is { } target)
            {
                _redirect = target;
                counters.Redirected();
            }
            else if (failureKind == DisconnectKind.Redirected)
            {
                failureKind = DisconnectKind.Failure;
            }

            try
            {
                var delay = backoff.Delay(attempt++, failureKind, _random.NextDouble());
                if (delay > TimeSpan.Zero) await Task.Delay(delay, time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    bool Done => options.MessagesPerDevice > 0 && Sent >= options.MessagesPerDevice;

    async Task<(DisconnectKind Kind, string Reason, bool Unexpected)> ConnectedAsync(IMqttClient client, string topic, Task<(DisconnectKind Kind, string Reason)> lost, CancellationToken stop)
    {
        var qos = (MqttQualityOfServiceLevel)options.Qos;
        if (options.CommandTopicPattern is { } commands)
        {
            try
            {
                var filter = string.Format(CultureInfo.InvariantCulture, commands, _clientId);
                var granted = await client.SubscribeAsync(factory.ClientFactory.CreateSubscribeOptionsBuilder().WithTopicFilter(filter, qos).Build(), stop).ConfigureAwait(false);
                if (granted.Items.All(i => (int)i.ResultCode < 0x80)) counters.SubscriptionGranted();
                else counters.Failures.Add("subscribe: refused");
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
            {
                if (lost.IsCompleted) return (lost.Result.Kind, lost.Result.Reason, true);
                if (stop.IsCancellationRequested) return await CloseAsync(client).ConfigureAwait(false);
                counters.Failures.Add($"subscribe: {Describe(e)}");
            }
        }

        using var connection = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _ = lost.ContinueWith(static (_, state) =>
        {
            try
            {
                ((CancellationTokenSource)state!).Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }, connection, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        while (!connection.IsCancellationRequested && !Done)
        {
            try
            {
                var jitter = (_random.NextDouble() * 2 - 1) * options.JitterSeconds;
                await Task.Delay(TimeSpan.FromSeconds(Math.Max(0, options.IntervalSeconds + jitter)), time, connection.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            var sequence = Sent;
            var unixMillis = (time.GetUtcNow() - DateTimeOffset.UnixEpoch).TotalMilliseconds;
            var message = new MqttApplicationMessageBuilder()
                .WithTopic(topic)
                .WithPayload(payload.Build(index, _clientId, sequence, unixMillis, _random))
                .WithQualityOfServiceLevel(qos)
                .Build();
            var started = time.GetTimestamp();
            try
            {
                // Not cancelled by the end of the run: a publish in flight is let finish (bounded by the client timeout).
                var result = await client.PublishAsync(message, CancellationToken.None).ConfigureAwait(false);
                if (options.Qos > 0 && !result.IsSuccess)
                {
                    counters.PublishFailed($"publish: {result.ReasonCode}");
                    continue;
                }

                counters.PublishCompleted(options.Qos > 0 ? time.GetElapsedTime(started) : null);
                Interlocked.Increment(ref _sent);
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException or IOException)
            {
                counters.PublishFailed($"publish: {Describe(e)}");
                if (!client.IsConnected) break;
            }
        }

        if (lost.IsCompleted) return (lost.Result.Kind, lost.Result.Reason, true);
        return await CloseAsync(client).ConfigureAwait(false);
    }

    static async Task<(DisconnectKind, string, bool)> CloseAsync(IMqttClient client)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await client.DisconnectAsync(new MqttClientDisconnectOptions(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException or IOException)
        {
        }

        return (DisconnectKind.Failure, "", false);
    }

    static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "timeout",
        { InnerException: System.Net.Sockets.SocketException s } => $"socket {s.SocketErrorCode}",
        System.Net.Sockets.SocketException s => $"socket {s.SocketErrorCode}",
        _ => $"{e.GetType().Name}: {e.Message}",
    };
}
