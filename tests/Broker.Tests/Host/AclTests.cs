using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Host.Auth;

namespace IotRealtime.Broker.Tests.Host;

public class AclTests
{
    static readonly string[] DeviceRules =
    [
        "# devices own their subtree",
        "allow publish devices/%c/#",
        "allow subscribe devices/%c/commands/#",
        "",
        "deny all #",
    ];

    static AclAuthorizer Authorizer(params string[] lines)
    {
        var errors = new List<string>();
        var rules = AclRuleSet.Parse(lines, "test", errors);
        Assert.Empty(errors);
        return new AclAuthorizer(rules, AclAuthorizer.EffectiveDefault(null, rules.Count));
    }

    [Fact]
    public void Device_example_confines_each_client_to_its_own_subtree()
    {
        var acl = Authorizer(DeviceRules);
        var device = new ClientIdentity("dev1", null);

        Assert.True(acl.CanPublish(device, "devices/dev1/telemetry"));
        Assert.True(acl.CanPublish(device, "devices/dev1"));
        Assert.False(acl.CanPublish(device, "devices/dev2/telemetry"));
        Assert.False(acl.CanPublish(device, "other"));

        Assert.Equal(SubscribeDecision.Allow, acl.CanSubscribe(device, "devices/dev1/commands/#"));
        Assert.Equal(SubscribeDecision.Allow, acl.CanSubscribe(device, "devices/dev1/commands/+/reboot"));
        Assert.Equal(SubscribeDecision.Allow, acl.CanSubscribe(device, "$share/g/devices/dev1/commands/x"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(device, "devices/dev1/#"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(device, "devices/+/commands/#"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(device, "devices/dev2/commands/#"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(device, "#"));
    }

    [Theory]
    [InlineData("dev+1")]
    [InlineData("+")]
    [InlineData("#")]
    [InlineData("a/b")]
    [InlineData("")]
    public void Client_id_with_wildcards_or_separators_cannot_escape_its_subtree(string clientId)
    {
        var acl = Authorizer(DeviceRules);
        var attacker = new ClientIdentity(clientId, null);

        Assert.False(acl.CanPublish(attacker, "devices/dev1/telemetry"));
        Assert.False(acl.CanPublish(attacker, $"devices/{clientId}/telemetry"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(attacker, "devices/+/commands/#"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(attacker, $"devices/{clientId}/commands/#"));
    }

    [Fact]
    public void Username_substitution_needs_a_username()
    {
        var acl = Authorizer("allow all users/%u/#", "allow publish shared/%u-%c/x");
        var alice = new ClientIdentity("c1", "alice");
        var anonymous = new ClientIdentity("c2", null);

        Assert.True(acl.CanPublish(alice, "users/alice/a"));
        Assert.Equal(SubscribeDecision.Allow, acl.CanSubscribe(alice, "users/alice/#"));
        Assert.True(acl.CanPublish(alice, "shared/alice-c1/x"));
        Assert.False(acl.CanPublish(alice, "users/bob/a"));
        Assert.False(acl.CanPublish(anonymous, "users//a"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(anonymous, "users/+/#"));
        Assert.False(acl.CanPublish(new ClientIdentity("c3", "ev+l"), "users/ev+l/a"));
    }

    [Fact]
    public void Subjects_select_users_clients_and_anonymous()
    {
        var acl = Authorizer(
            "allow all admin/# user admin",
            "allow publish gateways/# client gw-1",
            "allow subscribe public/# anonymous",
            "deny all #");

        Assert.True(acl.CanPublish(new ClientIdentity("x", "admin"), "admin/reset"));
        Assert.False(acl.CanPublish(new ClientIdentity("admin", null), "admin/reset"));
        Assert.True(acl.CanPublish(new ClientIdentity("gw-1", "someone"), "gateways/a"));
        Assert.False(acl.CanPublish(new ClientIdentity("gw-2", null), "gateways/a"));
        Assert.Equal(SubscribeDecision.Allow, acl.CanSubscribe(new ClientIdentity("y", null), "public/#"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(new ClientIdentity("y", "bob"), "public/#"));
    }

    [Fact]
    public void First_covering_rule_wins_and_an_overlapping_deny_filters_deliveries()
    {
        var acl = Authorizer("deny subscribe secret/#", "allow all #");
        var client = new ClientIdentity("c", "u");

        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(client, "secret/x"));
        Assert.Equal(SubscribeDecision.AllowFiltered, acl.CanSubscribe(client, "#"));
        Assert.Equal(SubscribeDecision.AllowFiltered, acl.CanSubscribe(client, "+/x"));
        Assert.Equal(SubscribeDecision.Allow, acl.CanSubscribe(client, "public/#"));
        Assert.False(acl.CanReceive(client, "secret/x"));
        Assert.True(acl.CanReceive(client, "public/x"));
        Assert.True(acl.CanPublish(client, "secret/x"));
    }

    [Fact]
    public void Default_is_allow_without_rules_and_deny_with_rules()
    {
        var client = new ClientIdentity("c", null);
        Assert.True(new AclAuthorizer([], AclAuthorizer.EffectiveDefault(null, 0)).CanPublish(client, "a"));
        Assert.False(Authorizer("allow publish b").CanPublish(client, "a"));

        var errors = new List<string>();
        var rules = AclRuleSet.Parse(["deny publish b"], "test", errors);
        Assert.True(new AclAuthorizer(rules, AclAuthorizer.EffectiveDefault(AclPermission.Allow, rules.Count)).CanPublish(client, "a"));
    }

    [Fact]
    public void Wildcard_rules_do_not_reach_dollar_topics()
    {
        var acl = Authorizer("allow all #");
        var client = new ClientIdentity("c", null);
        Assert.False(acl.CanPublish(client, "$SYS/broker/uptime"));
        Assert.Equal(SubscribeDecision.Deny, acl.CanSubscribe(client, "$SYS/#"));
        Assert.Equal(SubscribeDecision.Allow, Authorizer("allow subscribe $SYS/#").CanSubscribe(client, "$SYS/broker/+"));
    }

    [Theory]
    [InlineData("#", "a/b/c", true)]
    [InlineData("#", "#", true)]
    [InlineData("a/#", "a", true)]
    [InlineData("a/#", "a/#", true)]
    [InlineData("a/#", "a/+/c", true)]
    [InlineData("a/+", "a/b", true)]
    [InlineData("a/+", "a/+", true)]
    [InlineData("a/+/c", "a/b/c", true)]
    [InlineData("+/+", "x/y", true)]
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/+", "a/#", false)]
    [InlineData("a/+", "a", false)]
    [InlineData("a/+", "a/b/c", false)]
    [InlineData("a/b", "a/+", false)]
    [InlineData("a/b", "a/#", false)]
    [InlineData("a", "a/#", false)]
    [InlineData("a/b/#", "a/#", false)]
    [InlineData("#", "$SYS/#", false)]
    [InlineData("+/x", "$SYS/x", false)]
    [InlineData("$SYS/#", "$SYS/broker/+", true)]
    public void Filter_covers_filter(string rule, string filter, bool expected) =>
        Assert.Equal(expected, TopicFilterRelation.Covers(rule, filter));

    [Theory]
    [InlineData("secret/#", "#", true)]
    [InlineData("secret/#", "+/x", true)]
    [InlineData("secret/#", "secret", true)]
    [InlineData("a/+/c", "a/b/+", true)]
    [InlineData("a/b", "a/c", false)]
    [InlineData("a/b", "a/b/c", false)]
    [InlineData("#", "$SYS/x", false)]
    public void Filters_overlap(string a, string b, bool expected)
    {
        Assert.Equal(expected, TopicFilterRelation.Overlaps(a, b));
        Assert.Equal(expected, TopicFilterRelation.Overlaps(b, a));
    }

    [Theory]
    [InlineData("permit publish a", "unknown permission 'permit'")]
    [InlineData("allow write a", "unknown action 'write'")]
    [InlineData("allow publish", "expected 'allow|deny")]
    [InlineData("allow publish a/#/b", "not a valid MQTT topic filter")]
    [InlineData("allow publish a+/b", "not a valid MQTT topic filter")]
    [InlineData("allow publish a/%x", "unknown substitution")]
    [InlineData("allow publish a user", "needs a user name")]
    [InlineData("allow publish a group admins", "unknown subject 'group'")]
    [InlineData("allow publish a user bob extra", "unexpected 'extra'")]
    [InlineData("allow subscribe $share/g/a", "$share")]
    public void Syntax_errors_name_the_line_and_the_problem(string line, string expected)
    {
        var errors = new List<string>();
        var rules = AclRuleSet.Parse(["# comment", "allow publish ok", line], "acl.conf", errors);

        var error = Assert.Single(errors);
        Assert.StartsWith("acl.conf line 3: ", error);
        Assert.Contains(expected, error);
        Assert.Single(rules);
    }

    [Fact]
    public void Keywords_are_case_insensitive_and_rules_print_back()
    {
        Assert.True(AclRule.TryParse("ALLOW Subscribe  devices/%c/#   User bob", "x", out var rule, out _));
        Assert.NotNull(rule);
        Assert.Equal(AclPermission.Allow, rule.Permission);
        Assert.Equal(AclAction.Subscribe, rule.Actions);
        Assert.Equal("allow subscribe devices/%c/# user bob", rule.ToString());
    }
}
