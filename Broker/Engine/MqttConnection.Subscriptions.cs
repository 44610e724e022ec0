using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Engine.Sessions;
using MQTTnet.Packets;
using MQTTnet.Protocol;

namespace IotRealtime.Broker.Engine;

internal sealed partial class MqttConnection
{
    void HandleSubscribe(MqttSubscribePacket subscribe)
    {
        var options = _broker.Options;
        var session = Session!;
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
                if (!IsV5)
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
                codes.Add(IsV5 ? MqttSubscribeReasonCode.SharedSubscriptionsNotSupported : MqttSubscribeReasonCode.UnspecifiedError);
                continue;
            }
            if (!options.WildcardSubscriptionsAvailable && inner.AsSpan().IndexOfAny('+', '#') >= 0)
            {
                codes.Add(IsV5 ? MqttSubscribeReasonCode.WildcardSubscriptionsNotSupported : MqttSubscribeReasonCode.UnspecifiedError);
                continue;
            }
            var decision = _broker.Authorizer.CanSubscribe(session.Identity, text);
            if (decision == SubscribeDecision.Deny)
            {
                _broker.Log.SubscribeDenied(session.ClientId, text);
                codes.Add(IsV5 ? (MqttSubscribeReasonCode)options.SubscribeDeniedReasonCode : MqttSubscribeReasonCode.UnspecifiedError);
                continue;
            }
            var qos = Session.Min(filter.QualityOfServiceLevel, (MqttQualityOfServiceLevel)options.MaximumQoS);
            var (subscription, existed) = _broker.Subscribe(session, text, shared ? group : null, inner, qos, filter, subscribe.SubscriptionIdentifier,
                filtered: decision == SubscribeDecision.AllowFiltered);
            codes.Add((MqttSubscribeReasonCode)(int)qos);
            if (!shared && options.RetainAvailable && (filter.RetainHandling == MqttRetainHandling.SendAtSubscribe ||
                                                     (filter.RetainHandling == MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly && !existed)))
            {
                (retainedFor ??= new()).Add((subscription, existed));
            }
        }
        SendAckWhenDurable(new MqttSubAckPacket { PacketIdentifier = subscribe.PacketIdentifier, ReasonCodes = codes });
        if (retainedFor is not null)
        {
            foreach (var (subscription, _) in retainedFor)
            {
                _broker.DeliverRetained(subscription);
            }
        }
    }

    void HandleUnsubscribe(MqttUnsubscribePacket unsubscribe)
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
                if (!IsV5)
                {
                    throw new MqttProtocolError(MqttDisconnectReasonCode.MalformedPacket, $"Invalid topic filter '{filter}'.");
                }
                codes.Add(MqttUnsubscribeReasonCode.TopicFilterInvalid);
                continue;
            }
            codes.Add(_broker.Unsubscribe(Session!, filter!) ? MqttUnsubscribeReasonCode.Success : MqttUnsubscribeReasonCode.NoSubscriptionExisted);
        }
        SendAckWhenDurable(new MqttUnsubAckPacket { PacketIdentifier = unsubscribe.PacketIdentifier, ReasonCodes = codes });
    }
}
