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

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}
