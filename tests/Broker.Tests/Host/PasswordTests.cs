using System.Text;
using IotRealtime.Broker.Engine;
using IotRealtime.Broker.Engine.Security;
using IotRealtime.Broker.Host;
using IotRealtime.Broker.Host.Auth;
using Microsoft.Extensions.Logging.Abstractions;

namespace IotRealtime.Broker.Tests.Host;

public sealed class PasswordTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("iotrt-passwd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Hash_round_trips_through_its_text_form()
    {
        var hash = PasswordHash.Create("s3cret"u8, iterations: 1000);
        var text = hash.ToString();

        Assert.StartsWith("$pbkdf2-sha512$1000$", text);
        Assert.True(PasswordHash.TryParse(text, out var parsed, out _));
        Assert.True(parsed.Verify("s3cret"u8));
        Assert.False(parsed.Verify("s3cret!"u8));
        Assert.False(parsed.Verify(""u8));
    }

    [Fact]
    public void Same_password_gets_a_different_salt_each_time()
    {
        Assert.NotEqual(PasswordHash.Create("pw"u8, 1000).ToString(), PasswordHash.Create("pw"u8, 1000).ToString());
        Assert.Equal(PasswordHash.DefaultIterations, PasswordHash.Create("pw"u8).Iterations);
    }

    [Theory]
    [InlineData("alice", "line 1: expected 'username:")]
    [InlineData("alice:plain", "expected a hash starting with")]
    [InlineData("alice:$pbkdf2-sha512$x$AAAA$AAAA", "iterations 'x'")]
    [InlineData("alice:$pbkdf2-sha512$10$!!$AAAA", "not valid base64")]
    public void Bad_lines_are_reported_with_their_number(string line, string expected)
    {
        var errors = new List<string>();
        PasswordFile.Parse([line], "Auth:PasswordFile", errors);
        Assert.Contains(expected, Assert.Single(errors));
    }

    [Fact]
    public async Task Passwd_command_creates_and_updates_a_private_file()
    {
        var file = Path.Combine(_dir, "passwords");

        Assert.Equal(0, await BrokerHost.RunAsync(["passwd", file, "alice", "--password", "first"]));
        Assert.Equal(0, await BrokerHost.RunAsync(["passwd", file, "bob", "--password", "bobpw"]));
        Assert.Equal(0, await BrokerHost.RunAsync(["passwd", file, "alice", "--password", "second"]));

        var lines = File.ReadAllLines(file);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("alice:$pbkdf2-sha512$210000$", lines[0]);
        Assert.StartsWith("bob:", lines[1]);
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));

        var errors = new List<string>();
        var passwords = PasswordFile.Load(file, "Auth:PasswordFile", errors);
        Assert.Empty(errors);
        Assert.True(passwords.TryGet("alice", out var alice));
        Assert.True(alice!.Verify("second"u8));
        Assert.False(alice.Verify("first"u8));
    }

    [Fact]
    public async Task Passwd_command_reads_the_password_from_stdin()
    {
        var file = Path.Combine(_dir, "passwords");
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await IotRealtime.Broker.Host.Cli.PasswdCommand.RunAsync([file, "carol"], new StringReader("from-stdin\n"), output, error);

        Assert.Equal(0, code);
        var errors = new List<string>();
        Assert.True(PasswordFile.Load(file, "k", errors).TryGet("carol", out var hash));
        Assert.True(hash!.Verify("from-stdin"u8));
    }

    [Fact]
    public async Task Passwd_command_rejects_bad_usage()
    {
        Assert.Equal(2, await BrokerHost.RunAsync(["passwd", Path.Combine(_dir, "p")]));
        Assert.Equal(2, await BrokerHost.RunAsync(["passwd", Path.Combine(_dir, "p"), "a:b", "--password", "x"]));
        Assert.False(File.Exists(Path.Combine(_dir, "p")));
    }

    [Fact]
    public async Task Authenticator_checks_passwords_and_anonymous_access()
    {
        var errors = new List<string>();
        var passwords = PasswordFile.Parse([$"alice:{PasswordHash.Create("pw"u8, 1000)}"], "k", errors);
        var authenticator = new PasswordAuthenticator(new AuthOptions { PasswordFile = "set" }, passwords, NullLogger<PasswordAuthenticator>.Instance);

        Assert.Equal(AuthenticationResult.Accept("alice"), await Authenticate(authenticator, "alice", "pw"));
        Assert.Equal(AuthenticationFailure.BadUserNameOrPassword, (await Authenticate(authenticator, "alice", "wrong")).Failure);
        Assert.Equal(AuthenticationFailure.BadUserNameOrPassword, (await Authenticate(authenticator, "mallory", "pw")).Failure);
        Assert.Equal(AuthenticationFailure.BadUserNameOrPassword, (await Authenticate(authenticator, "alice", null)).Failure);
        Assert.Equal(AuthenticationFailure.NotAuthorized, (await Authenticate(authenticator, null, null)).Failure);

        var open = new PasswordAuthenticator(new AuthOptions { PasswordFile = "set", AllowAnonymous = true }, passwords, NullLogger<PasswordAuthenticator>.Instance);
        Assert.Equal(AuthenticationResult.Accept(null), await Authenticate(open, null, null));
    }

    static ValueTask<AuthenticationResult> Authenticate(IMqttAuthenticator authenticator, string? username, string? password) =>
        authenticator.AuthenticateAsync(
            new AuthenticationRequest("client", username, password is null ? null : Encoding.UTF8.GetBytes(password), null, new ConnectionInfo("tcp", null, null, false, null)),
            CancellationToken.None);
}
