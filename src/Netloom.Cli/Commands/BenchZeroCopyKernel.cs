using System.Diagnostics;
using System.Globalization;

namespace Netloom.Cli.Commands;

/// <summary>
/// The kernel's reference for `netloom bench zerocopy`: a small C sender (written for this bench
/// from msg_zerocopy.rst) sends 64 KiB writes over TCP across a veth pair between two network
/// namespaces it makes, with MSG_ZEROCOPY and without, and reports its own CPU time (getrusage)
/// and how many completions carried SO_EE_CODE_ZEROCOPY_COPIED. Needs root, iproute2 and gcc.
/// </summary>
internal static class BenchZeroCopyKernel
{
    private const string Source = """
        #include <errno.h>
        #include <time.h>
        #include <linux/errqueue.h>
        #include <netinet/in.h>
        #include <poll.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/resource.h>
        #include <sys/socket.h>
        #include <arpa/inet.h>
        #include <time.h>
        #include <unistd.h>
        #ifndef SO_ZEROCOPY
        #define SO_ZEROCOPY 60
        #endif
        #ifndef MSG_ZEROCOPY
        #define MSG_ZEROCOPY 0x4000000
        #endif
        #define WRITE (64 * 1024)
        #define NBUF 128
        static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
        static double cpu(void) { struct rusage u; getrusage(RUSAGE_SELF, &u); return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6; }
        static long done_hi = -1, notes = 0, copied = 0;
        /* Reads every completion waiting on the error queue (msg_zerocopy.rst, "Notification Parsing"). */
        static void drain(int fd) {
            for (;;) {
                char control[128]; struct msghdr m = {0}; m.msg_control = control; m.msg_controllen = sizeof control;
                if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
                    struct sock_extended_err *e = (struct sock_extended_err *)CMSG_DATA(c);
                    if (e->ee_errno != 0 || e->ee_origin != SO_EE_ORIGIN_ZEROCOPY) continue;
                    notes++;
                    if (e->ee_code & SO_EE_CODE_ZEROCOPY_COPIED) copied += e->ee_data - e->ee_info + 1;
                    done_hi = e->ee_data;
                }
            }
        }
        int main(int argc, char **argv) {
            if (argc < 4) return 2;
            struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
            inet_pton(AF_INET, argv[2], &a.sin_addr);
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (!strcmp(argv[1], "sink")) {
                int one = 1; setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                if (bind(fd, (void *)&a, sizeof a) || listen(fd, 1)) { perror("sink"); return 1; }
                static char buf[WRITE];
                for (;;) { int c = accept(fd, 0, 0); if (c < 0) return 1; while (read(c, buf, sizeof buf) > 0) {} close(c); }
            }
            double seconds = atof(argv[4]);
            int zc = !strcmp(argv[1], "zerocopy"), one = 1;
            if (zc && setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one)) { perror("SO_ZEROCOPY"); return 1; }
            if (connect(fd, (void *)&a, sizeof a)) { perror("connect"); return 1; }
            static char bufs[NBUF][WRITE];
            for (int i = 0; i < NBUF; i++) memset(bufs[i], i, WRITE);
            long sends = 0, bytes = 0, start_bytes = 0; double t0 = now(), warm = t0 + 0.5, start = 0, c0 = 0;
            for (;;) {
                double t = now();
                if (start == 0 && t >= warm) { start = t; c0 = cpu(); start_bytes = bytes; }
                if (start != 0 && t >= start + seconds) break;
                if (zc) {
                    drain(fd);
                    /* A buffer is reused only after the send that lent it completed. */
                    while (sends - NBUF > done_hi) { struct pollfd p = { fd, 0, 0 }; poll(&p, 1, 100); drain(fd); }
                }
                ssize_t n = send(fd, bufs[sends % NBUF], WRITE, zc ? MSG_ZEROCOPY : 0);
                if (n < 0 && errno == ENOBUFS) { struct pollfd p = { fd, 0, 0 }; poll(&p, 1, 10); continue; }
                if (n < 0) { perror("send"); return 1; }
                bytes += n; sends++;
            }
            double c1 = cpu(), t1 = now();
            printf("%ld %.6f %.6f %ld %ld %ld\n", bytes - start_bytes, c1 - c0, t1 - start, sends, notes, copied);
            return 0;
        }
        """;

    public static List<(string, object)> Run(double seconds)
    {
        var figures = new List<(string, object)>();
        if (Environment.UserName != "root") { figures.Add(("kernel", "not run: the veth pair needs root")); return figures; }
        if (ExternalTool.Which("gcc") is null || ExternalTool.Which("ip") is null) { figures.Add(("kernel", "not run: needs gcc and iproute2")); return figures; }
        string dir = Directory.CreateTempSubdirectory("netloom-bench-zc-").FullName;
        string tag = (Environment.ProcessId % 10000).ToString(CultureInfo.InvariantCulture);
        string nsA = $"nlzca{tag}", nsB = $"nlzcb{tag}";
        Process? sink = null;
        try
        {
            string src = Path.Combine(dir, "zc.c"), exe = Path.Combine(dir, "zc");
            File.WriteAllText(src, Source);
            Sh("gcc", "-O2", "-Wall", "-o", exe, src);
            Sh("ip", "netns", "add", nsA);
            Sh("ip", "netns", "add", nsB);
            Sh("ip", "link", "add", $"zca{tag}", "netns", nsA, "type", "veth", "peer", "name", $"zcb{tag}", "netns", nsB);
            Sh("ip", "-n", nsA, "addr", "add", "10.231.0.1/24", "dev", $"zca{tag}");
            Sh("ip", "-n", nsB, "addr", "add", "10.231.0.2/24", "dev", $"zcb{tag}");
            Sh("ip", "-n", nsA, "link", "set", $"zca{tag}", "up");
            Sh("ip", "-n", nsB, "link", "set", $"zcb{tag}", "up");
            sink = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", nsB, exe, "sink", "10.231.0.2", "7009"]) { RedirectStandardError = true })!;
            Thread.Sleep(300);
            var copy = new List<double[]>();
            var zc = new List<double[]>();
            for (int round = 0; round < 4; round++)
            {
                bool zeroFirst = round % 2 == 1;
                (zeroFirst ? zc : copy).Add(Send(exe, nsA, zeroFirst ? "zerocopy" : "copy", seconds));
                (zeroFirst ? copy : zc).Add(Send(exe, nsA, zeroFirst ? "copy" : "zerocopy", seconds));
            }
            double[] c = MedianByCpu(copy), z = MedianByCpu(zc);
            double cGbps = MedianGbps(copy), zGbps = MedianGbps(zc);
            figures.Add(("kernel_copy_gbps", Math.Round(cGbps, 2)));
            figures.Add(("kernel_zerocopy_gbps", Math.Round(zGbps, 2)));
            figures.Add(("kernel_copy_cpu_s_per_gb", Math.Round(c[1] / (c[0] / 1e9), 4)));
            figures.Add(("kernel_zerocopy_cpu_s_per_gb", Math.Round(z[1] / (z[0] / 1e9), 4)));
            figures.Add(("kernel_cpu_per_byte_ratio", Math.Round(c[1] / c[0] / (z[1] / z[0]), 2)));
            figures.Add(("kernel_zerocopy_sends", z[3]));
            figures.Add(("kernel_zerocopy_notifications", z[4]));
            figures.Add(("kernel_zerocopy_copied_sends", z[5]));
        }
        catch (InvalidOperationException e) { figures.Add(("kernel", $"not run: {e.Message}")); }
        finally
        {
            if (sink is { HasExited: false }) sink.Kill(entireProcessTree: true);
            sink?.Dispose();
            Quiet("ip", "netns", "del", nsA);
            Quiet("ip", "netns", "del", nsB);
            Directory.Delete(dir, recursive: true);
        }
        return figures;
    }

    private static double[] MedianByCpu(List<double[]> rounds) => rounds.OrderBy(r => r[1] / r[0]).ElementAt(rounds.Count / 2);
    private static double MedianGbps(List<double[]> rounds) => rounds.Select(r => r[0] * 8 / r[2] / 1e9).Order().ElementAt(rounds.Count / 2);

    /// <summary>One sender run: bytes, cpu seconds, wall seconds, sends, notifications, copied sends.</summary>
    private static double[] Send(string exe, string ns, string mode, double seconds)
    {
        var psi = new ProcessStartInfo("ip", ["netns", "exec", ns, exe, mode, "10.231.0.2", "7009", seconds.ToString(CultureInfo.InvariantCulture)])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var parts = output.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (p.ExitCode != 0 || parts.Length != 6) throw new InvalidOperationException($"the {mode} sender failed: {err.Trim()}");
        return parts.Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
    }

    private static void Sh(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: {err.Trim()}");
    }

    private static void Quiet(string file, params string[] args)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            p.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception) { }
    }
}
