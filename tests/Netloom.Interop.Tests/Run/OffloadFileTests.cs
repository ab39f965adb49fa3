using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Netloom.Interop.Tests.Support;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// Static files under `netloom run --offload`: nginx's sendfile behind its queued headers becomes a
/// read in the ring, and its close of the file a close in the ring. The transfers must stay
/// byte-exact on keep-alive connections while the files change between requests.
/// </summary>
public partial class OffloadTests
{
    [GeneratedRegex(@"; (\d+) file reads, (\d+) closes in the ring")]
    private static partial Regex FileStats();

    [ToolTheory("nginx", "curl")]
    [InlineData("0", false)]
    [InlineData("50", false)]
    [InlineData("0", true)]
    [InlineData("coalesce", true)]
    [InlineData("single-issuer", true)]
    public void Nginx_small_files_through_the_ring_stay_byte_exact_when_files_change_between_requests(string busyPoll, bool openFileCache)
    {
        using var dir = new TempDir();
        int port = FreePort();
        // 65,000 bytes behind nginx's headers cross the engine's 64 KiB send chunks.
        int[] sizes = [1, 1000, 4096, 40_000, 65_000, 65_536];
        void Write(int i, int size, bool byRename)
        {
            byte[] bytes = RandomNumberGenerator.GetBytes(size);
            if (!byRename) { File.WriteAllBytes(dir.File($"f{i}"), bytes); return; }
            File.WriteAllBytes(dir.File($"f{i}.new"), bytes);
            File.Move(dir.File($"f{i}.new"), dir.File($"f{i}"), overwrite: true); // what a deployment does
        }
        for (int i = 0; i < sizes.Length; i++) Write(i, sizes[i], false);
        string conf = RunLab.NginxConf(dir, $"127.0.0.1:{port}", 1024, openFileCache ? "open_file_cache max=100 inactive=60s; open_file_cache_valid 1s;" : "");
        var argv = RunLab.OffloadCommand(["nginx", "-c", conf], OffloadTests.VariantFlags(busyPoll));
        using var nginx = new Background(null, argv[0], argv[1..]);
        for (int i = 0; i < 100 && Sh.Run(Minute, "bash", "-c", $"exec 3<>/dev/tcp/127.0.0.1/{port}").Code != 0; i++) Thread.Sleep(200);

        // Every file twice over one keep-alive connection, each compared with the file as it is now.
        void FetchAll(string round)
        {
            var args = new List<string> { "-sS", "-w", "%{http_code} %{num_connects} %{size_download}\n" };
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < sizes.Length; i++) args.AddRange(["-o", dir.File($"got{pass}-{i}"), $"http://127.0.0.1:{port}/f{i}"]);
            var r = Sh.Run(Minute, "curl", [.. args]);
            Assert.True(r.Code == 0, round + ": " + r.Out + r.Err + nginx.Log);
            var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2 * sizes.Length, lines.Length);
            Assert.StartsWith("200 1 ", lines[0]);
            Assert.All(lines.Skip(1), l => Assert.StartsWith("200 0 ", l)); // one connection, kept alive
            for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < sizes.Length; i++)
                    Assert.True(RunLab.Sha256(dir.File($"f{i}")) == RunLab.Sha256(dir.File($"got{pass}-{i}")), $"{round}: f{i} (pass {pass}) differs from the file");
        }
        FetchAll("first");
        // Changed between requests: new sizes and contents, in place and by rename. (With
        // open_file_cache, nginx itself serves a file it holds open until it checks again, so
        // there only the rename, after its check interval.)
        for (int i = 0; i < sizes.Length; i++)
            if (!openFileCache || i % 2 == 0) Write(i, sizes[sizes.Length - 1 - i] + 17, byRename: i % 2 == 0);
        if (openFileCache)
        {
            for (int i = 1; i < sizes.Length; i += 2) Write(i, sizes[i] + 5, byRename: true);
            Thread.Sleep(1500);
        }
        FetchAll("after the files changed");
        // Many connections at once, each checked.
        string expect = RunLab.Sha256(dir.File("f4")).ToLowerInvariant();
        var par = Sh.Run(2 * Minute, "bash", "-c", $"for i in $(seq 60); do (curl -s http://127.0.0.1:{port}/f4 | sha256sum) & done; wait");
        Assert.Equal(60, par.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.StartsWith(expect)));
        Sh.Run(Minute, "kill", "-QUIT", File.ReadAllText(dir.File("nginx.pid")).Trim());
        nginx.Stop();
        string log = nginx.Log + File.ReadAllText(dir.File("error.log"));
        var m = FileStats().Match(log);
        Assert.True(m.Success, log);
        Assert.True(long.Parse(m.Groups[1].Value) >= 60, $"file reads in the ring: {m.Groups[1].Value}\n{log}");
        if (!openFileCache) Assert.True(long.Parse(m.Groups[2].Value) >= 60, $"closes in the ring: {m.Groups[2].Value}\n{log}");
    }
}
