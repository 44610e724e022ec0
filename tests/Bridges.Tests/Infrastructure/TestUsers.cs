using IotRealtime.Broker.Host.Auth;

namespace IotRealtime.Bridges.Tests.Infrastructure;

/// <summary>A password file with test users (cheap hashes) in a temp directory, removed on dispose.</summary>
public sealed class TestUsers : IDisposable
{
    TestUsers(string directory) => Directory = directory;

    public string Directory { get; }

    public string PasswordFile => Path.Combine(Directory, "passwords");

    public static TestUsers Create(params (string User, string Password)[] users)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("iotrt-users-").FullName;
        File.WriteAllLines(Path.Combine(directory, "passwords"),
            users.Select(u => $"{u.User}:{PasswordHash.Create(System.Text.Encoding.UTF8.GetBytes(u.Password), iterations: 1000)}"));
        return new TestUsers(directory);
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
