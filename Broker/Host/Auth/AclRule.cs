using System.Diagnostics.CodeAnalysis;
using IotRealtime.Broker.Engine.Routing;
using IotRealtime.Broker.Engine.Security;

namespace IotRealtime.Broker.Host.Auth;

[Flags]
public enum AclAction
{
    Publish = 1,
    Subscribe = 2,
    All = Publish | Subscribe,
}

public enum AclSubjectKind
{
    Any,
    User,
    Client,
    Anonymous,
}

/// <summary>
/// One access rule. Grammar, one rule per line (keywords case-insensitive, fields separated by whitespace):
/// <code>
/// allow|deny  publish|subscribe|all  &lt;topic-filter&gt;  [user &lt;name&gt; | client &lt;id&gt; | anonymous | any]
/// </code>
/// Blank lines and lines starting with <c>#</c> are ignored (there are no trailing comments: <c>#</c> is a filter).
/// The filter may contain <c>%c</c> (client id) and <c>%u</c> (username), substituted per client; a rule whose
/// substituted value is missing, empty or contains <c>+</c>, <c>#</c> or <c>/</c> does not match that client, so
/// nobody escapes their own subtree by choosing a clever id. Rules are checked in order; the first that matches decides.
/// A publish to topic T matches when the filter matches T. A subscription to filter F matches an <c>allow</c> rule
/// when the rule's filter covers F (every topic F can match, the rule's filter matches) and a <c>deny</c> rule when
/// the two filters overlap (some topic matches both), so <c>deny subscribe secret/#</c> also refuses <c>#</c>.
/// A <c>$share/{group}/</c> prefix is removed before checking. Filters follow MQTT rules, so a leading wildcard does
/// not match topics starting with <c>$</c>.
/// </summary>
public sealed class AclRule
{
    AclRule(AclPermission permission, AclAction actions, string filter, AclSubjectKind subjectKind, string? subject, string source)
    {
        Permission = permission;
        Actions = actions;
        Filter = filter;
        SubjectKind = subjectKind;
        Subject = subject;
        Source = source;
        HasSubstitution = filter.Contains('%', StringComparison.Ordinal);
    }

    public AclPermission Permission { get; }

    public AclAction Actions { get; }

    /// <summary>The filter as written, before %c/%u substitution.</summary>
    public string Filter { get; }

    public AclSubjectKind SubjectKind { get; }

    /// <summary>The user name or client id for <see cref="AclSubjectKind.User"/> and <see cref="AclSubjectKind.Client"/>.</summary>
    public string? Subject { get; }

    /// <summary>Where the rule came from, e.g. "Auth:Acl:0" or "Auth:AclFile (acl.conf) line 3".</summary>
    public string Source { get; }

    public bool HasSubstitution { get; }

    /// <summary>Parses one line. Returns true with a null rule for blank and comment lines.</summary>
    public static bool TryParse(string line, string source, out AclRule? rule, [NotNullWhen(false)] out string? error)
    {
        rule = null;
        error = null;
        var trimmed = line.Trim();
        if (trimmed.Length == 0 || trimmed[0] == '#') return true;

        var tokens = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length < 3)
        {
            error = "expected 'allow|deny publish|subscribe|all <topic-filter> [user <name>|client <id>|anonymous|any]'";
            return false;
        }

        AclPermission permission;
        switch (tokens[0].ToLowerInvariant())
        {
            case "allow": permission = AclPermission.Allow; break;
            case "deny": permission = AclPermission.Deny; break;
            default:
                error = $"unknown permission '{tokens[0]}'; expected allow or deny";
                return false;
        }

        AclAction actions;
        switch (tokens[1].ToLowerInvariant())
        {
            case "publish": actions = AclAction.Publish; break;
            case "subscribe": actions = AclAction.Subscribe; break;
            case "all": actions = AclAction.All; break;
            default:
                error = $"unknown action '{tokens[1]}'; expected publish, subscribe or all";
                return false;
        }

        var filter = tokens[2];
        if (!TryValidateFilter(filter, out error)) return false;

        var subjectKind = AclSubjectKind.Any;
        string? subject = null;
        if (tokens.Length > 3)
        {
            var keyword = tokens[3].ToLowerInvariant();
            var expectedTokens = keyword is "user" or "client" ? 5 : 4;
            switch (keyword)
            {
                case "user": subjectKind = AclSubjectKind.User; break;
                case "client": subjectKind = AclSubjectKind.Client; break;
                case "anonymous": subjectKind = AclSubjectKind.Anonymous; break;
                case "any": subjectKind = AclSubjectKind.Any; break;
                default:
                    error = $"unknown subject '{tokens[3]}'; expected user <name>, client <id>, anonymous or any";
                    return false;
            }
            if (tokens.Length < expectedTokens)
            {
                error = $"'{tokens[3]}' needs a {(keyword == "user" ? "user name" : "client id")} after it";
                return false;
            }
            if (tokens.Length > expectedTokens)
            {
                error = $"unexpected '{tokens[expectedTokens]}' after the subject (topic filters cannot contain spaces; comments go on their own line)";
                return false;
            }
            if (expectedTokens == 5) subject = tokens[4];
        }

        rule = new AclRule(permission, actions, filter, subjectKind, subject, source);
        return true;
    }

    static bool TryValidateFilter(string filter, [NotNullWhen(false)] out string? error)
    {
        for (var i = 0; i < filter.Length; i++)
        {
            if (filter[i] != '%') continue;
            if (i + 1 >= filter.Length || filter[i + 1] is not ('c' or 'u'))
            {
                error = $"topic filter '{filter}': unknown substitution at position {i}; only %c (client id) and %u (username) are supported";
                return false;
            }
            i++;
        }
        if (filter.StartsWith(TopicValidation.SharePrefix, StringComparison.Ordinal))
        {
            error = $"topic filter '{filter}': write the filter without the $share/<group>/ prefix; rules apply to the filter inside it";
            return false;
        }
        // Any valid substituted value is one non-wildcard segment of text, so "x" stands in for it.
        var sample = filter.Replace("%c", "x", StringComparison.Ordinal).Replace("%u", "x", StringComparison.Ordinal);
        if (!TopicValidation.IsValidTopicFilter(sample))
        {
            error = $"topic filter '{filter}' is not a valid MQTT topic filter ('+' and '#' must fill a whole level; '#' only last)";
            return false;
        }
        error = null;
        return true;
    }

    /// <summary>Whether the rule's subject selects <paramref name="client"/>.</summary>
    public bool AppliesTo(ClientIdentity client) => SubjectKind switch
    {
        AclSubjectKind.Any => true,
        AclSubjectKind.User => client.Username is not null && string.Equals(client.Username, Subject, StringComparison.Ordinal),
        AclSubjectKind.Client => string.Equals(client.ClientId, Subject, StringComparison.Ordinal),
        AclSubjectKind.Anonymous => client.Username is null,
        _ => false,
    };

    /// <summary>The filter with %c and %u replaced for <paramref name="client"/>; null when a value is unusable and the rule must not match.</summary>
    public string? ResolveFilter(ClientIdentity client)
    {
        if (!HasSubstitution) return Filter;
        if (Filter.Contains("%c", StringComparison.Ordinal) && !IsSafeLevelText(client.ClientId)) return null;
        if (Filter.Contains("%u", StringComparison.Ordinal) && !IsSafeLevelText(client.Username)) return null;
        return Filter.Replace("%c", client.ClientId, StringComparison.Ordinal).Replace("%u", client.Username, StringComparison.Ordinal);
    }

    static bool IsSafeLevelText(string? value) => !string.IsNullOrEmpty(value) && value.AsSpan().IndexOfAny('+', '#', '/') < 0 && !value.Contains('\0');

    public override string ToString() =>
        $"{Permission.ToString().ToLowerInvariant()} {(Actions == AclAction.All ? "all" : Actions.ToString().ToLowerInvariant())} {Filter}" +
        SubjectKind switch
        {
            AclSubjectKind.User => $" user {Subject}",
            AclSubjectKind.Client => $" client {Subject}",
            AclSubjectKind.Anonymous => " anonymous",
            _ => string.Empty,
        };
}
