using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine.Connections;

/// <summary>SUBSCRIBE and UNSUBSCRIBE of one connection: validation, authorization, the broker's subscription change, SUBACK/UNSUBACK and retained messages.</summary>
internal static class SubscribeHandler
{
    public static void HandleSubscribe(ConnectionState state, MqttSubscribePacket subscribe)
    {
        var broker = state.Broker;
        var options = broker.Options;
        var session = state.Session!;
        if (subscribe.TopicFilters is not { Count: > 0 })
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, "SUBSCRIBE without topic filters.");
        }
        if (subscribe.PacketIdentifier == 0)
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, "SUBSCRIBE without packet identifier.");
        }
        var codes = new List<MqttSubscribeReasonCode>(subscribe.TopicFilters.Count);
        List<(Subscription Subscription, bool Existed)>? retainedFor = null;
        foreach (var filter in subscribe.TopicFilters)
        {
            var text = filter.Topic ?? string.Empty;
            if (!TopicValidation.IsValidTopicFilter(text))
            {
                if (!state.IsV5)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"Invalid topic filter '{text}'.");
                }
                codes.Add(MqttSubscribeReasonCode.TopicFilterInvalid);
                continue;
            }
            var shared = TopicValidation.TryParseShared(text, out var group, out var inner);
            if (shared && filter.NoLocal)
            {
                throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, "No Local on a shared subscription.");
            }
            if (shared && !options.SharedSubscriptionsAvailable)
            {
                codes.Add(state.IsV5 ? MqttSubscribeReasonCode.SharedSubscriptionsNotSupported : MqttSubscribeReasonCode.UnspecifiedError);
                continue;
            }
            if (!options.WildcardSubscriptionsAvailable && inner.AsSpan().IndexOfAny('+', '#') >= 0)
            {
                codes.Add(state.IsV5 ? MqttSubscribeReasonCode.WildcardSubscriptionsNotSupported : MqttSubscribeReasonCode.UnspecifiedError);
                continue;
            }
            var decision = broker.Authorizer.CanSubscribe(session.Identity, text);
            if (decision == SubscribeDecision.Deny)
            {
                broker.Log.SubscribeDenied(session.ClientId, text);
                codes.Add(state.IsV5 ? (MqttSubscribeReasonCode)options.SubscribeDeniedReasonCode : MqttSubscribeReasonCode.UnspecifiedError);
                continue;
            }
            var qos = Session.Min(filter.QualityOfServiceLevel, (MqttQualityOfServiceLevel)options.MaximumQoS);
            var (subscription, existed) = broker.Subscribe(session, text, shared ? group : null, inner, qos, filter, subscribe.SubscriptionIdentifier,
                filtered: decision == SubscribeDecision.AllowFiltered);
            codes.Add((MqttSubscribeReasonCode)(int)qos);
            if (!shared && options.RetainAvailable && (filter.RetainHandling == MqttRetainHandling.SendAtSubscribe ||
                                                     (filter.RetainHandling == MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly && !existed)))
            {
                (retainedFor ??= new()).Add((subscription, existed));
            }
        }
        // in a cluster, SUBACK once the peers know a route this SUBSCRIBE added: a publish on any node after it matches
        state.Connection.SendAckWhenDurable(new MqttSubAckPacket { PacketIdentifier = subscribe.PacketIdentifier, ReasonCodes = codes },
            broker.ClusterLink?.RoutesPropagated());
        if (retainedFor is not null)
        {
            foreach (var (subscription, _) in retainedFor)
            {
                broker.DeliverRetained(subscription);
            }
        }
    }

    public static void HandleUnsubscribe(ConnectionState state, MqttUnsubscribePacket unsubscribe)
    {
        if (unsubscribe.TopicFilters is not { Count: > 0 })
        {
            throw new MqttProtocolError(MqttDisconnectReasonCode.ProtocolError, "UNSUBSCRIBE without topic filters.");
        }
        var codes = new List<MqttUnsubscribeReasonCode>(unsubscribe.TopicFilters.Count);
        foreach (var filter in unsubscribe.TopicFilters)
        {
            if (!TopicValidation.IsValidTopicFilter(filter ?? string.Empty))
            {
                if (!state.IsV5)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"Invalid topic filter '{filter}'.");
                }
                codes.Add(MqttUnsubscribeReasonCode.TopicFilterInvalid);
                continue;
            }
            codes.Add(state.Broker.Unsubscribe(state.Session!, filter!) ? MqttUnsubscribeReasonCode.Success : MqttUnsubscribeReasonCode.NoSubscriptionExisted);
        }
        state.Connection.SendAckWhenDurable(new MqttUnsubAckPacket { PacketIdentifier = unsubscribe.PacketIdentifier, ReasonCodes = codes });
    }
}
