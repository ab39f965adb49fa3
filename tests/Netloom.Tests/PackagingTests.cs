using System.Diagnostics;
using System.IO.Compression;
using System.Text;

namespace Netloom.Tests;

/// <summary>
/// `dotnet pack` makes a Netloom package that a program outside the repository can reference and
/// run: the test packs src/Netloom into a temporary feed, builds a small console program against
/// the package (restored from that feed plus the usual sources), and runs it.
/// </summary>
public sealed class PackagingTests : IDisposable
{
    private static readonly TimeSpan StepLimit = TimeSpan.FromMinutes(5);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"netloom-pack-{Guid.NewGuid():N}");

    public PackagingTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    [Fact]
    public void A_program_builds_and_runs_against_the_packed_package()
    {
        string feed = Path.Combine(_dir, "feed");
        string app = Path.Combine(_dir, "app");
        Directory.CreateDirectory(app);

        // Build output and restore state go under the temp dir, so the repository's bin/obj are untouched.
        Dotnet(_dir, "pack", Path.Combine(RepoRoot(), "src", "Netloom", "Netloom.csproj"), "-c", "Release", "-o", feed,
            "--artifacts-path", Path.Combine(_dir, "artifacts"));
        string package = Assert.Single(Directory.GetFiles(feed, "Netloom.*.nupkg"));
        using (var zip = ZipFile.OpenRead(package))
        {
            Assert.NotNull(zip.GetEntry("README.md"));
            Assert.NotNull(zip.GetEntry("lib/net10.0/Netloom.dll"));
            var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal));
            using var reader = new StreamReader(nuspec.Open());
            string text = reader.ReadToEnd();
            Assert.Contains("<id>Netloom</id>", text);
            Assert.Contains("<license type=\"expression\">MIT</license>", text);
            Assert.Contains("<readme>README.md</readme>", text);
        }
        string version = Path.GetFileNameWithoutExtension(package)["Netloom.".Length..];

        // Empty MSBuild files stop the repository's (or any parent's) central package management
        // and build settings from reaching the program; NuGet.config adds the feed and keeps the default sources.
        File.WriteAllText(Path.Combine(_dir, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(_dir, "Directory.Build.targets"), "<Project />\n");
        File.WriteAllText(Path.Combine(_dir, "Directory.Packages.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(_dir, "NuGet.config"), """
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="netloom-local" value="feed" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <NuGetAudit>false</NuGetAudit>
                <!-- A private packages folder: the global one may hold an older Netloom of the same version. -->
                <RestorePackagesPath>$(MSBuildThisFileDirectory)../packages</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Netloom" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), Program);

        Dotnet(app, "build", "-c", "Release");
        string output = Dotnet(app, Path.Combine(app, "bin", "Release", "net10.0", "app.dll"));

        Assert.Contains("pipe: 10.0.0.1:1234 -> 10.0.0.2:5678 udp 'hello from the package' checksums ok", output);
        Assert.Contains("emulated: 5 bytes 'hello' from 10.0.0.2:80", output);
    }

    /// <summary>The consumer: a frame built with Wire reprs, sent through a pipe port, parsed back; then the README's emulator example.</summary>
    private const string Program = """
        using System.Net;
        using System.Text;
        using Netloom.Emulation;
        using Netloom.Netem;
        using Netloom.Rings;
        using Netloom.Time;
        using Netloom.Wire;

        string name = $"pkg{Environment.ProcessId}";
        using (var a = Ports.Open($"pipe:{name}{{0"))
        using (var b = Ports.Open($"pipe:{name}}}0"))
        {
            var src = Ipv4Address.FromIPAddress(IPAddress.Parse("10.0.0.1"));
            var dst = Ipv4Address.Parse("10.0.0.2");
            byte[] payload = Encoding.ASCII.GetBytes("hello from the package");
            var eth = new EthernetRepr(MacAddress.Parse("02:00:00:00:00:01"), MacAddress.Parse("02:00:00:00:00:02"), EtherType.Ipv4);
            var udp = new UdpRepr(1234, 5678, payload.Length);
            var ip = new Ipv4Repr(src, dst, IpProtocol.Udp, udp.BufferLength);
            int length = eth.BufferLength + ip.TotalLength;

            uint h = a.Tx.Head;
            Span<byte> frame = a.Tx.Buffer(h);
            eth.Emit(frame);
            ip.Emit(frame[eth.BufferLength..]);
            Span<byte> datagram = frame.Slice(eth.BufferLength + ip.HeaderLength, udp.BufferLength);
            payload.CopyTo(datagram[UdpRepr.HeaderLength..]);
            udp.Emit(datagram, src, dst);
            a.Tx[h].Length = (ushort)length;
            a.Tx.Head = a.Tx.Cur = a.Tx.Next(h);
            a.TxSync();

            b.RxSync();
            if (b.Rx.IsEmpty) throw new Exception("nothing arrived on the pipe");
            var d = DecodedFrame.Decode(b.Rx.Packet(b.Rx.Head));
            string text = Encoding.ASCII.GetString(b.Rx.Packet(b.Rx.Head).Slice(d.PayloadOffset, d.PayloadLength));
            Console.WriteLine($"pipe: {d.Ipv4.Source}:{d.Udp.SourcePort} -> {d.Ipv4.Destination}:{d.Udp.DestinationPort} udp '{text}' checksums {(d.ChecksumsOk ? "ok" : "bad")}");
            b.Rx.Release(1);
        }

        using var net = new Network(new NetworkOptions { Seed = 1 });
        var h1 = net.AddHost("h1", IPAddress.Parse("10.0.0.1"));
        var h2 = net.AddHost("h2", IPAddress.Parse("10.0.0.2"));
        var wan = net.Connect(h1, h2, new Impairments { Delay = Duration.FromMilliseconds(20), Loss = 0.01 });
        _ = h2.Spawn(async () =>
        {
            using var listener = h2.Sockets.Listen(new IPEndPoint(IPAddress.Any, 80));
            await using var c = await listener.AcceptAsync();
            await c.WriteAsync("hello"u8.ToArray());
        });
        var buffer = new byte[16];
        EndPoint? from = null;
        var reply = h1.Spawn(async () =>
        {
            await using var c = await h1.Sockets.ConnectAsync(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 80));
            from = c.RemoteEndPoint;
            return await c.ReadAsync(buffer);
        });
        if (!net.RunUntil(() => reply.IsCompleted, Duration.FromSeconds(10))) throw new Exception("the emulated reply did not come");
        int n = reply.Result;
        Console.WriteLine($"emulated: {n} bytes '{Encoding.ASCII.GetString(buffer, 0, n)}' from {from}");
        """;

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Netloom.slnx"))) return d.FullName;
        throw new InvalidOperationException("the repository root (Netloom.slnx) is not above the test's directory");
    }

    /// <summary>Runs dotnet with <paramref name="args"/> in <paramref name="workDir"/>; returns its output, failing the test on a non-zero exit.</summary>
    private static string Dotnet(string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (args[0] is "pack" or "build") { psi.ArgumentList.Add("--nologo"); psi.ArgumentList.Add("--disable-build-servers"); }
        // The test host's MSBuild settings must not leak into the child; no build servers outlive the test.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        using var p = Process.Start(psi)!;
        var output = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(StepLimit))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', args)} did not finish in {StepLimit}:\n{output}");
        }
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"dotnet {string.Join(' ', args)} exited with {p.ExitCode}:\n{output}");
        return output.ToString();
    }
}
