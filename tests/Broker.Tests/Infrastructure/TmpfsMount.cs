using System.Diagnostics;

namespace IotRealtime.Broker.Tests.Infrastructure;

/// <summary>
/// A small tmpfs mounted for one test: a file system that really fills up (ENOSPC), for what the store does when the
/// disk is full. Mounting needs root (this machine and CI run tests as root); a test that needs one fails, never skips,
/// when mounting is refused. Disposing unmounts it and removes the mount point.
/// </summary>
public sealed class TmpfsMount : IDisposable
{
    TmpfsMount(string path, string size)
    {
        Path = path;
        Size = size;
    }

    /// <summary>The mount point.</summary>
    public string Path { get; }

    public string Size { get; }

    /// <param name="size">As mount's <c>size=</c> option takes it, e.g. "2m" or "256k".</param>
    public static TmpfsMount Create(string size)
    {
        var path = Directory.CreateTempSubdirectory("iotrt-tmpfs-").FullName;
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", path);
        if (code != 0)
        {
            Directory.Delete(path);
            Assert.Fail($"Mounting a {size} tmpfs at {path} failed (exit code {code}): {output.Trim()}. " +
                "This test needs a small real file system that fills up: run it as root (or with CAP_SYS_ADMIN), as CI does.");
        }
        return new TmpfsMount(path, size);
    }

    /// <summary>Deletes everything in the file system, so it is empty again.</summary>
    public void Clear()
    {
        foreach (var directory in Directory.GetDirectories(Path)) Directory.Delete(directory, recursive: true);
        foreach (var file in Directory.GetFiles(Path)) File.Delete(file);
    }

    public void Dispose()
    {
        var (code, output) = Run("umount", Path);
        if (code != 0)
        {
            // still busy (a process of ours that has not let go yet): detach it now, the kernel frees it when unused
            (code, output) = Run("umount", "-l", Path);
        }
        if (code != 0) throw new InvalidOperationException($"Unmounting the tmpfs at {Path} failed (exit code {code}): {output.Trim()}");
        Directory.Delete(Path);
    }

    static (int Code, string Output) Run(string fileName, params string[] arguments)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            process.Kill();
            return (-1, $"{fileName} did not finish within 30 s");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
