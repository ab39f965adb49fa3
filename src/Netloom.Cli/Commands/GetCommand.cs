using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Netloom.Sockets;
using Netloom.Wire;
using Spectre.Console;

namespace Netloom.Cli.Commands;

/// <summary>`netloom get`: an HTTP/1.1 GET through the user-level stack, saved to a file.</summary>
internal static class GetCommand
{
    public static Command Create()
    {
        var o = new HostSetup.Options();
        var url = new Argument<string>("url") { Description = "http://ADDRESS[:PORT]/PATH with an IPv4 address or an [IPv6] one (there is no DNS)" };
        var output = new Option<string>("--output", "-o") { Description = "File to write the body to", Required = true };
        var timeout = new Option<double>("--timeout") { Description = "Give up after this many seconds", DefaultValueFactory = _ => 120 };
        var cmd = new Command("get", "Download a URL over HTTP/1.1 through a user-level TCP stack; exit 0 only when the whole body arrived") { url, output, timeout };
        o.AddTo(cmd);
        cmd.SetAction(r => Run(r, o, r.GetValue(url)!, r.GetValue(output)!, r.GetValue(timeout)));
        return cmd;
    }

    private static int Run(ParseResult r, HostSetup.Options o, string url, string output, double timeoutSeconds)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http"
            || !(uri.HostNameType == UriHostNameType.IPv4 || uri.HostNameType == UriHostNameType.IPv6)
            || !System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip)
            || (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && ip.ScopeId != 0))
            return CliErrors.Report($"'{url}': expected http://ADDRESS[:PORT]/PATH with an IPv4 address or an [IPv6] one (no zone)", CliErrors.BadInput);
        var server = Ipv6Address.FromIPAddress(ip);
        if (!server.IsIpv4Mapped && r.GetValue(o.NoIp6)) return CliErrors.Report($"'{url}' is an IPv6 URL but --no-ip6 was given", CliErrors.BadInput);
        int code = HostSetup.TryStart(r, o, out var setup);
        if (code != CliErrors.Ok) return code;
        using (setup)
        {
            // IPv6: wait for an address that passed DAD (static, or SLAAC after a router advertisement).
            if (!server.IsIpv4Mapped && !setup.WaitForIpv6(server, TimeSpan.FromSeconds(Math.Min(timeoutSeconds, 10))))
                return CliErrors.Report($"no usable IPv6 address to reach {server} within 10 s: give --ip6, or a router must advertise a prefix");
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
            try { return Download(setup.Stack, server, (ushort)uri.Port, uri.PathAndQuery, uri.Authority, output, cts.Token).GetAwaiter().GetResult(); }
            catch (OperationCanceledException) { return CliErrors.Report($"timed out after {timeoutSeconds} s"); }
            catch (TcpException e) { return CliErrors.Report(e.Message); }
            catch (IOException e) { return CliErrors.Report(e.Message); }
        }
    }

    private static async Task<int> Download(SocketStack stack, Ipv6Address server, ushort port, string path, string host, string output, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        await using var c = await stack.ConnectAsync(server, port, ct: ct);
        await c.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: netloom\r\nAccept: */*\r\nConnection: close\r\n\r\n"), ct);
        var buf = new byte[256 << 10];
        int have = 0, end;
        while ((end = buf.AsSpan(0, have).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (have == 64 << 10) return CliErrors.Report("the response header is over 64 KiB");
            int n = await c.ReadAsync(buf.AsMemory(have, (64 << 10) - have), ct);
            if (n == 0) return CliErrors.Report("the server closed the connection before a complete response header");
            have += n;
        }
        var lines = Encoding.ASCII.GetString(buf, 0, end).Split("\r\n");
        var status = lines[0].Split(' ', 3);
        if (status.Length < 2 || !status[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(status[1], out int statusCode))
            return CliErrors.Report($"not an HTTP response: '{lines[0]}'");
        long? length = null;
        foreach (var line in lines.AsSpan(1))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) continue;
            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && long.TryParse(value, out long l) && l >= 0) length = l;
            if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && !value.Equals("identity", StringComparison.OrdinalIgnoreCase))
                return CliErrors.Report($"Transfer-Encoding '{value}' is not supported (Content-Length bodies only)");
        }
        if (statusCode != 200) return CliErrors.Report($"the server answered '{lines[0]}'");

        long received = have - end - 4;
        await using var file = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: false);
        file.Write(buf, end + 4, (int)received);
        bool interactive = !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (interactive)
        {
            await AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                .StartAsync(async p =>
                {
                    var task = p.AddTask(Path.GetFileName(output), maxValue: length ?? 1);
                    task.IsIndeterminate = length is null;
                    received = await Body(c, file, buf, received, length, ct, n => task.Value = n);
                    task.StopTask();
                });
        }
        else received = await Body(c, file, buf, received, length, ct, null);

        double seconds = clock.Elapsed.TotalSeconds;
        if (length is { } expected && received != expected)
            return CliErrors.Report($"the connection ended after {received:N0} of {expected:N0} bytes");
        Console.Error.WriteLine($"netloom get: {received:N0} bytes to {output} in {seconds:F2} s ({received * 8 / seconds / 1e6:F1} Mbit/s)");
        return CliErrors.Ok;
    }

    private static async Task<long> Body(TcpConnection c, FileStream file, byte[] buf, long received, long? length, CancellationToken ct, Action<long>? progress)
    {
        while (length is null || received < length)
        {
            int want = length is { } l ? (int)Math.Min(buf.Length, l - received) : buf.Length;
            int n = await c.ReadAsync(buf.AsMemory(0, want), ct);
            if (n == 0) break;
            file.Write(buf, 0, n);
            received += n;
            progress?.Invoke(received);
        }
        return received;
    }
}
