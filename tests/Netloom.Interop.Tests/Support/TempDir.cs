namespace Netloom.Interop.Tests.Support;

/// <summary>A temporary directory removed at dispose, readable by tools that drop privileges (dumpcap).</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; }

    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("netloom-interop-").FullName;
        System.IO.File.SetUnixFileMode(Path, (UnixFileMode)0x1FF); // 0777: tshark's capture child may not run as root
    }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes <paramref name="bytes"/> random bytes (the same ones for the same seed) to a file here and returns its path.</summary>
    public string RandomFile(string name, int bytes, int seed)
    {
        var data = new byte[bytes];
        new Random(seed).NextBytes(data);
        var path = File(name);
        System.IO.File.WriteAllBytes(path, data);
        return path;
    }

    /// <summary>A file's SHA-256, upper-case hex.</summary>
    public static string Sha256(string path)
    {
        using var f = System.IO.File.OpenRead(path);
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(f));
    }

    /// <summary>
    /// Asserts two files hold the same bytes. When they differ, the message says where (first and
    /// last differing offsets, how many bytes differ) and copies the received file and any
    /// <paramref name="evidence"/> (captures, logs) to a directory kept after the test
    /// (NETLOOM_KEEP_DIR, default /tmp/netloom-kept), so a failure seen once can be read.
    /// <paramref name="beforeKeep"/> runs first (to stop a capture, so its file is complete).
    /// </summary>
    public static void AssertSameFile(string expected, string actual, Action? beforeKeep = null, params string[] evidence)
    {
        byte[] want = System.IO.File.ReadAllBytes(expected), got = System.IO.File.ReadAllBytes(actual);
        if (want.AsSpan().SequenceEqual(got)) return;
        int n = Math.Min(want.Length, got.Length), first = -1, last = -1, differ = 0;
        for (int i = 0; i < n; i++)
        {
            if (want[i] == got[i]) continue;
            if (first < 0) first = i;
            last = i;
            differ++;
        }
        if (first < 0 && want.Length == got.Length) return;
        try { beforeKeep?.Invoke(); } catch (Exception e) when (e is IOException or InvalidOperationException) { }
        string keep = System.IO.Path.Combine(Environment.GetEnvironmentVariable("NETLOOM_KEEP_DIR") is { Length: > 0 } d ? d : "/tmp/netloom-kept",
            $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}-{System.IO.Path.GetFileName(actual)}");
        Directory.CreateDirectory(keep);
        foreach (var f in evidence.Prepend(actual).Prepend(expected))
            if (System.IO.File.Exists(f)) System.IO.File.Copy(f, System.IO.Path.Combine(keep, System.IO.Path.GetFileName(f)), true);
        string where = first < 0 ? $"the first {n} bytes agree" : $"{differ} of the first {n} bytes differ, from offset {first} to {last}";
        Assert.Fail($"{actual} ({got.Length} bytes) is not {expected} ({want.Length} bytes): {where}; kept in {keep}");
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}
