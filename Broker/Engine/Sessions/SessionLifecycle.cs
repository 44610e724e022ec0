using IotRealtime.Broker.Engine.Operations;
using IotRealtime.Broker.Engine.Pipeline;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Sessions;

/// <summary>
/// What happens to sessions over time: attach and takeover, a connection's close (will now or after its delay,
/// session kept or ended), the end of a session (its subscriptions leave the trie, its shared messages go to other
/// members), and housekeeping four times a second: the keep-alive sweep, due wills, expired sessions and the $SYS topics.
/// </summary>
internal sealed class SessionLifecycle(MqttBroker broker, SessionRegistry registry, Router router, Admission admission, SysPublisher sys)
{
    ITimer? _timer;
    int _inTick;

    /// <summary>Binds a new connection to its session (see <see cref="SessionRegistry.Attach"/>), then closes a taken-over connection, ends a replaced session and publishes a will that is due because of it.</summary>
    public (Session Session, bool Present) Attach(MqttConnection connection, string clientId, ClientIdentity identity, bool cleanStart, uint expiryInterval)
    {
        var attached = registry.Attach(connection, clientId, identity, cleanStart, expiryInterval);
        if (attached.Previous is { } previous)
        {
            broker.Log.SessionTakenOver(clientId);
            previous.RequestClose(MqttDisconnectReasonCode.SessionTakenOver);
        }
        if (attached.Ended is { } ended)
        {
            End(ended);
        }
        if (attached.DueWill is { } will)
        {
            PublishWill(will.Message);
        }
        return (attached.Session, attached.Present);
    }

    public void OnConnectionClosed(MqttConnection connection, bool clean)
    {
        var session = connection.Session;
        if (session is null)
        {
            return;
        }
        broker.Log.ClientDisconnected(session.ClientId, clean);
        if (!registry.Detach(connection, session, clean, broker.Time.GetUtcNow(), out var will, out var endNow))
        {
            return;
        }
        if (will is not null)
        {
            PublishWill(will.Message);
        }
        if (endNow)
        {
            End(session);
            TellClusterEnded(session.ClientId);
        }
    }

    /// <summary>Ends a session now: its connection is closed (MQTT 5: 0x98) without its will. False when there is no such session.</summary>
    public bool Delete(string clientId)
    {
        if (registry.Remove(clientId, out var connection) is not { } session)
        {
            return false;
        }
        if (connection is not null)
        {
            connection.Will = null;
            connection.RequestClose(MqttDisconnectReasonCode.AdministrativeAction);
        }
        broker.Log.AdminDeletedSession(clientId);
        End(session);
        TellClusterEnded(clientId);
        return true;
    }

    /// <summary>Removes a session's subscriptions and hands its queued shared-subscription messages to other group members.</summary>
    public void End(Session session)
    {
        var (subscriptions, undelivered) = session.End();
        router.RemoveEnded(subscriptions, undelivered);
    }

    /// <summary>Tells the cluster, if any, that no session of <paramref name="clientId"/> is left here; its failure is logged, never the engine's.</summary>
    void TellClusterEnded(string clientId)
    {
        if (broker.ClusterSessions is { } cluster)
        {
            try
            {
                cluster.SessionEnded(clientId);
            }
            catch (Exception ex)
            {
                broker.Log.ClusterSessionEndedFailed(clientId, ex);
            }
        }
    }

    public void PublishWill(MqttMessage will)
    {
        if (will.ExpiresAt is { } expiresAt)
        {
            // the Will Message Expiry Interval runs from publication, not from CONNECT (MQTT 5 §3.1.3.2.4): restamp it
            var now = broker.Time.GetUtcNow();
            will = new MqttMessage
            {
                Topic = will.Topic,
                Payload = will.Payload,
                QoS = will.QoS,
                Retain = will.Retain,
                ContentType = will.ContentType,
                ResponseTopic = will.ResponseTopic,
                CorrelationData = will.CorrelationData,
                PayloadFormat = will.PayloadFormat,
                UserProperties = will.UserProperties,
                PublisherClientId = will.PublisherClientId,
                PublisherUsername = will.PublisherUsername,
                ReceivedAt = now,
                ExpiresAt = now + (expiresAt - will.ReceivedAt),
            };
        }
        var identity = new ClientIdentity(will.PublisherClientId ?? string.Empty, will.PublisherUsername);
        if (!broker.Authorizer.CanPublish(identity, will.Topic))
        {
            broker.Log.PublishDenied(identity.ClientId, will.Topic);
            return;
        }
        sys.WillPublished(will);
        var accept = broker.AcceptAsync(will);
        if (accept.IsCompletedSuccessfully)
        {
            if (accept.Result == AcceptResult.Accepted)
            {
                router.Route(will);
            }
            return;
        }
        _ = RouteWhenAcceptedAsync(accept, will);
    }

    async Task RouteWhenAcceptedAsync(ValueTask<AcceptResult> accept, MqttMessage message)
    {
        try
        {
            if (await accept.ConfigureAwait(false) == AcceptResult.Accepted)
            {
                router.Route(message);
            }
        }
        catch (Exception ex)
        {
            broker.Log.AcceptStageFailed(message.PublisherClientId, ex);
        }
    }

    /// <summary>Starts housekeeping, four times a second so will delays are kept to within a quarter second.</summary>
    public void Start() =>
        _timer ??= broker.Time.CreateTimer(static s => ((SessionLifecycle)s!).Tick(), this, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));

    public ValueTask StopAsync() => _timer?.DisposeAsync() ?? ValueTask.CompletedTask;

    void Tick()
    {
        if (Interlocked.Exchange(ref _inTick, 1) == 1)
        {
            return;
        }
        try
        {
            var timestamp = broker.Time.GetTimestamp();
            foreach (var connection in admission.Connections)
            {
                connection.CheckTimeouts(timestamp);
            }
            var now = broker.Time.GetUtcNow();
            List<MqttMessage>? wills = null;
            List<Session>? expired = null;
            registry.TakeDue(now, ref wills, ref expired);
            // a will is sent when its session ends, before the session's subscriptions go
            foreach (var will in wills ?? [])
            {
                PublishWill(will);
            }
            foreach (var session in expired ?? [])
            {
                broker.Log.SessionExpired(session.ClientId);
                End(session);
                TellClusterEnded(session.ClientId);
            }
            sys.PublishSysTopicsIfDue(now);
        }
        catch (Exception ex)
        {
            broker.Log.HousekeepingFailed(ex);
        }
        finally
        {
            Volatile.Write(ref _inTick, 0);
        }
    }
}
