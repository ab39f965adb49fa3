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

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}
