using System.Text;
using IotRealtime.Broker.Host.Auth;

namespace IotRealtime.Broker.Host.Cli;

/// <summary><c>iotrealtime-broker passwd &lt;file&gt; &lt;username&gt; [--password &lt;pw&gt;]</c>: adds or updates a user in a password file (mode 600).</summary>
public static class PasswdCommand
{
    public const string Name = "passwd";

    const string Usage = "Usage: iotrealtime-broker passwd <file> <username> [--password <password>]  (without --password, the password is read from the first line of stdin)";

    public static async Task<int> RunAsync(string[] args, TextReader input, TextWriter output, TextWriter error)
    {
        string? password = null;
        var positional = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--password")
            {
                if (i + 1 >= args.Length)
                {
                    await error.WriteLineAsync("--password needs a value. " + Usage).ConfigureAwait(false);
                    return 2;
                }
                password = args[++i];
            }
            else if (args[i] is "-h" or "--help")
            {
                await output.WriteLineAsync(Usage).ConfigureAwait(false);
                return 0;
            }
            else
            {
                positional.Add(args[i]);
            }
        }

        if (positional.Count != 2)
        {
            await error.WriteLineAsync(Usage).ConfigureAwait(false);
            return 2;
        }

        var (file, username) = (positional[0], positional[1]);
        if (username.Length == 0 || username.Contains(':', StringComparison.Ordinal))
        {
            await error.WriteLineAsync($"Invalid username '{username}': it must be non-empty and cannot contain ':'.").ConfigureAwait(false);
            return 2;
        }

        password ??= await input.ReadLineAsync().ConfigureAwait(false);
        if (string.IsNullOrEmpty(password))
        {
            await error.WriteLineAsync("No password given (use --password or write it to stdin).").ConfigureAwait(false);
            return 2;
        }

        try
        {
            PasswordFile.SetPassword(file, username, PasswordHash.Create(Encoding.UTF8.GetBytes(password)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"Cannot write '{file}': {e.Message}").ConfigureAwait(false);
            return 1;
        }

        await output.WriteLineAsync($"Password for '{username}' set in {file}.").ConfigureAwait(false);
        return 0;
    }
}
