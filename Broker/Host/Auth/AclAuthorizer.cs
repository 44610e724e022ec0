using System.Runtime.CompilerServices;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;

namespace IotRealtime.Broker.Host.Auth;

/// <summary>
/// Authorizes publishes and subscriptions with ordered <see cref="AclRule"/>s, first match wins, <see cref="DefaultPermission"/> otherwise.
/// Each client's rules are resolved once (subject selected, %c/%u substituted) and cached for as long as its identity lives,
/// so a publish costs one allocation-free <see cref="TopicFilter"/> match per applicable rule (a client's rules are few,
/// so a scan in order is cheaper than a <see cref="TopicFilterIndex{T}"/> kept for each client).
/// </summary>
public sealed class AclAuthorizer : IMqttAuthorizer
{
    readonly AclRule[] _rules;
    readonly ConditionalWeakTable<ClientIdentity, ClientRules> _resolved = new();
    readonly ConditionalWeakTable<ClientIdentity, ClientRules>.CreateValueCallback _resolve;

    public AclAuthorizer(IEnumerable<AclRule> rules, AclPermission defaultPermission)
    {
        _rules = [.. rules];
        DefaultPermission = defaultPermission;
        _resolve = Resolve;
    }

    public AclPermission DefaultPermission { get; }

    public IReadOnlyList<AclRule> Rules => _rules;

    /// <summary>The decision when no rule matches, as the Auth:AclDefault key describes.</summary>
    public static AclPermission EffectiveDefault(AclPermission? configured, int ruleCount) =>
        configured ?? (ruleCount == 0 ? AclPermission.Allow : AclPermission.Deny);

    public bool CanPublish(ClientIdentity client, string topic)
    {
        foreach (var rule in _resolved.GetValue(client, _resolve).Publish)
        {
            if (rule.Filter.Matches(topic)) return rule.Allow;
        }
        return DefaultPermission == AclPermission.Allow;
    }

    /// <summary>
    /// The first rule whose filter covers the requested filter decides. A deny rule met before it that only overlaps
    /// (e.g. <c>deny subscribe secret/#</c> before <c>allow all #</c>, for a subscription to <c>#</c>) does not refuse the
    /// subscription but makes it filtered: each message is then checked with <see cref="CanReceive"/>, so nothing under
    /// the denied subtree is delivered.
    /// </summary>
    public SubscribeDecision CanSubscribe(ClientIdentity client, string topicFilter)
    {
        TopicValidation.TryParseShared(topicFilter, out _, out var inner);
        var filter = new TopicFilter(inner);
        var overlapsDeny = false;
        foreach (var rule in _resolved.GetValue(client, _resolve).Subscribe)
        {
            if (filter.IsCoveredBy(rule.Filter))
            {
                return !rule.Allow ? SubscribeDecision.Deny : overlapsDeny ? SubscribeDecision.AllowFiltered : SubscribeDecision.Allow;
            }
            overlapsDeny |= !rule.Allow && filter.Overlaps(rule.Filter);
        }
        return DefaultPermission != AclPermission.Allow ? SubscribeDecision.Deny : overlapsDeny ? SubscribeDecision.AllowFiltered : SubscribeDecision.Allow;
    }

    public bool CanReceive(ClientIdentity client, string topic)
    {
        foreach (var rule in _resolved.GetValue(client, _resolve).Subscribe)
        {
            if (rule.Filter.Matches(topic)) return rule.Allow;
        }
        return DefaultPermission == AclPermission.Allow;
    }

    ClientRules Resolve(ClientIdentity client)
    {
        var publish = new List<ResolvedRule>();
        var subscribe = new List<ResolvedRule>();
        foreach (var rule in _rules)
        {
            if (!rule.AppliesTo(client)) continue;
            var filter = rule.ResolveFilter(client);
            if (filter is null) continue;
            var resolved = new ResolvedRule(new TopicFilter(filter), rule.Permission == AclPermission.Allow);
            if (rule.Actions.HasFlag(AclAction.Publish)) publish.Add(resolved);
            if (rule.Actions.HasFlag(AclAction.Subscribe)) subscribe.Add(resolved);
        }
        return new ClientRules([.. publish], [.. subscribe]);
    }

    sealed record ResolvedRule(TopicFilter Filter, bool Allow);

    sealed record ClientRules(ResolvedRule[] Publish, ResolvedRule[] Subscribe);
}
