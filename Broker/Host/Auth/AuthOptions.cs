namespace IotRealtime.Broker.Host.Auth;

public enum AclPermission
{
    Allow,
    Deny,
}

/// <summary>Authentication and authorization, bound from the "Auth" configuration section.</summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary>Whether clients without a username or certificate identity may connect; unset = true without a PasswordFile, false with one.</summary>
    public bool? AllowAnonymous { get; set; }

    /// <summary>Lines of <c>username:$pbkdf2-sha512$iterations$salt$hash</c>, written by <c>iotrealtime-broker passwd</c>.</summary>
    public string? PasswordFile { get; set; }

    /// <summary>A verified client certificate's subject CN is the username when the client sent none.</summary>
    public bool UseCertificateIdentity { get; set; } = true;

    /// <summary>File of ACL rules (grammar on <see cref="AclRule"/>); checked after the inline <see cref="Acl"/> rules.</summary>
    public string? AclFile { get; set; }

    /// <summary>Inline ACL rules, checked first so an environment variable can add an exception to a file.</summary>
    public List<string> Acl { get; set; } = [];

    /// <summary>Decision when no rule matches; unset = allow when there are no rules, deny when there are.</summary>
    public AclPermission? AclDefault { get; set; }

    public bool EffectiveAllowAnonymous => AllowAnonymous ?? string.IsNullOrWhiteSpace(PasswordFile);
}
