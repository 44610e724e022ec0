using System.Text;

namespace IotRealtime.Broker.Host.Auth;

/// <summary>Reads the rules of <c>Auth:Acl</c> (inline, first) and <c>Auth:AclFile</c>, collecting one error per bad line.</summary>
public static class AclRuleSet
{
    public static List<AclRule> Load(AuthOptions options, ICollection<string> errors)
    {
        var rules = new List<AclRule>();
        for (var i = 0; i < options.Acl.Count; i++)
        {
            var key = $"{AuthOptions.Section}:Acl:{i}";
            Add(rules, options.Acl[i], key, errors);
        }

        if (!string.IsNullOrWhiteSpace(options.AclFile))
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(options.AclFile, Encoding.UTF8);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add($"{AuthOptions.Section}:AclFile: cannot read '{options.AclFile}': {e.Message}");
                return rules;
            }
            rules.AddRange(Parse(lines, $"{AuthOptions.Section}:AclFile ({options.AclFile})", errors));
        }
        return rules;
    }

    /// <summary>Parses rule lines; errors read "&lt;source&gt; line N: ...".</summary>
    public static List<AclRule> Parse(IEnumerable<string> lines, string source, ICollection<string> errors)
    {
        var rules = new List<AclRule>();
        var number = 0;
        foreach (var line in lines)
        {
            number++;
            Add(rules, line, $"{source} line {number}", errors);
        }
        return rules;
    }

    static void Add(List<AclRule> rules, string line, string source, ICollection<string> errors)
    {
        if (!AclRule.TryParse(line, source, out var rule, out var error))
        {
            errors.Add($"{source}: {error}.");
        }
        else if (rule is not null)
        {
            rules.Add(rule);
        }
    }
}
