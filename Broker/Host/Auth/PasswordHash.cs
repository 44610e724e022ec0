using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;

namespace IotRealtime.Broker.Host.Auth;

/// <summary>A PBKDF2-SHA512 password hash in the form <c>$pbkdf2-sha512$&lt;iterations&gt;$&lt;base64 salt&gt;$&lt;base64 hash&gt;</c>.</summary>
public sealed class PasswordHash
{
    public const string Scheme = "$pbkdf2-sha512$";

    /// <summary>OWASP's 2023 recommendation for PBKDF2-HMAC-SHA512.</summary>
    public const int DefaultIterations = 210_000;

    const int SaltBytes = 16;
    const int HashBytes = 64;

    PasswordHash(int iterations, byte[] salt, byte[] hash)
    {
        Iterations = iterations;
        Salt = salt;
        Hash = hash;
    }

    public int Iterations { get; }

    public byte[] Salt { get; }

    public byte[] Hash { get; }

    public static PasswordHash Create(ReadOnlySpan<byte> password, int iterations = DefaultIterations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        return new PasswordHash(iterations, salt, Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA512, HashBytes));
    }

    public static bool TryParse(string text, [NotNullWhen(true)] out PasswordHash? hash, [NotNullWhen(false)] out string? error)
    {
        hash = null;
        if (!text.StartsWith(Scheme, StringComparison.Ordinal))
        {
            error = $"expected a hash starting with '{Scheme}'";
            return false;
        }
        var parts = text[Scheme.Length..].Split('$');
        if (parts.Length != 3)
        {
            error = $"expected '{Scheme}<iterations>$<base64 salt>$<base64 hash>'";
            return false;
        }
        if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations < 1)
        {
            error = $"iterations '{parts[0]}' is not a positive number";
            return false;
        }
        try
        {
            var salt = Convert.FromBase64String(parts[1]);
            var digest = Convert.FromBase64String(parts[2]);
            if (salt.Length == 0 || digest.Length == 0)
            {
                error = "salt and hash must not be empty";
                return false;
            }
            hash = new PasswordHash(iterations, salt, digest);
            error = null;
            return true;
        }
        catch (FormatException)
        {
            error = "salt or hash is not valid base64";
            return false;
        }
    }

    /// <summary>Derives the hash of <paramref name="password"/> and compares in constant time. Costs one full PBKDF2 run.</summary>
    public bool Verify(ReadOnlySpan<byte> password)
    {
        var derived = Rfc2898DeriveBytes.Pbkdf2(password, Salt, Iterations, HashAlgorithmName.SHA512, Hash.Length);
        return CryptographicOperations.FixedTimeEquals(derived, Hash);
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Scheme}{Iterations}${Convert.ToBase64String(Salt)}${Convert.ToBase64String(Hash)}");
}
