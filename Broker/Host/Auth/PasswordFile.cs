using System.Text;

namespace IotRealtime.Broker.Host.Auth;

/// <summary>
/// The users of <c>Auth:PasswordFile</c>: one <c>username:$pbkdf2-sha512$iterations$salt$hash</c> per line;
/// blank lines and lines starting with '#' are ignored. Usernames cannot contain ':'.
/// </summary>
public sealed class PasswordFile
{
    readonly Dictionary<string, PasswordHash> _users;

    PasswordFile(Dictionary<string, PasswordHash> users) => _users = users;

    public int Count => _users.Count;

    /// <summary>The iteration count most users' hashes have, so a check for an unknown user can take as long as a real one.</summary>
    public int TypicalIterations => _users.Count == 0
        ? PasswordHash.DefaultIterations
        : _users.Values.GroupBy(h => h.Iterations).MaxBy(g => g.Count())!.Key;

    public bool TryGet(string username, out PasswordHash? hash) => _users.TryGetValue(username, out hash);

    /// <summary>Parses <paramref name="lines"/>; each bad line adds an error prefixed with <paramref name="source"/> and its line number.</summary>
    public static PasswordFile Parse(IEnumerable<string> lines, string source, ICollection<string> errors)
    {
        var users = new Dictionary<string, PasswordHash>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in lines)
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                errors.Add($"{source} line {number}: expected 'username:{PasswordHash.Scheme}...'.");
                continue;
            }
            var username = line[..colon];
            if (!PasswordHash.TryParse(line[(colon + 1)..], out var hash, out var error))
            {
                errors.Add($"{source} line {number}: user '{username}': {error}.");
                continue;
            }
            if (!users.TryAdd(username, hash))
            {
                errors.Add($"{source} line {number}: user '{username}' appears more than once.");
            }
        }
        return new PasswordFile(users);
    }

    public static PasswordFile Load(string path, string key, ICollection<string> errors)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"{key}: cannot read '{path}': {e.Message}");
            return new PasswordFile([]);
        }
        return Parse(lines, $"{key} ({path})", errors);
    }

    /// <summary>Adds or replaces <paramref name="username"/>'s line in the file at <paramref name="path"/>, keeping other lines; the file is left readable by its owner only.</summary>
    public static void SetPassword(string path, string username, PasswordHash hash)
    {
        if (username.Length == 0 || username.Contains(':', StringComparison.Ordinal) || username.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            throw new ArgumentException("A username must be non-empty and cannot contain ':' or line breaks.", nameof(username));
        }

        var lines = File.Exists(path) ? File.ReadAllLines(path, Encoding.UTF8).ToList() : [];
        var entry = $"{username}:{hash}";
        var index = lines.FindIndex(l => l.TrimStart().StartsWith(username + ":", StringComparison.Ordinal));
        if (index >= 0) lines[index] = entry;
        else lines.Add(entry);

        // Write beside the target and rename, so a reader never sees half a file.
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
        {
            foreach (var line in lines) writer.Write(line + "\n");
        }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temp, full, overwrite: true);
    }
}
