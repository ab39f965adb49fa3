namespace Netloom.Interop.Tests.Support;

/// <summary>
/// Two network namespaces joined by a veth pair, with IPv4 addresses in a /24 only they use.
/// Everything is removed at dispose (deleting a namespace deletes its end of the veth).
/// </summary>
internal sealed class NetnsPair : IDisposable
{
    private static int s_counter;

    public string NsA { get; }
    public string NsB { get; }
    public string IfA { get; }
    public string IfB { get; }
    public string IpA { get; }
    public string IpB { get; }
    /// <summary>The third octet, unique to this pair, so other addresses can be derived.</summary>
    public int Subnet { get; }

    public NetnsPair()
    {
        int n = Interlocked.Increment(ref s_counter);
        string tag = $"{Environment.ProcessId % 10000}x{n}";
        NsA = $"nlA{tag}";
        NsB = $"nlB{tag}";
        IfA = $"nla{tag}";
        IfB = $"nlb{tag}";
        Subnet = (Environment.ProcessId + n) % 250 + 1;
        IpA = $"10.213.{Subnet}.1";
        IpB = $"10.213.{Subnet}.2";
        try
        {
            Sh.Ok("ip", "netns", "add", NsA);
            Sh.Ok("ip", "netns", "add", NsB);
            Sh.Ok("ip", "link", "add", IfA, "netns", NsA, "type", "veth", "peer", "name", IfB, "netns", NsB);
            Sh.Ok("ip", "-n", NsA, "addr", "add", $"{IpA}/24", "dev", IfA);
            Sh.Ok("ip", "-n", NsB, "addr", "add", $"{IpB}/24", "dev", IfB);
            foreach (var (ns, dev) in new[] { (NsA, IfA), (NsB, IfB), (NsA, "lo"), (NsB, "lo") })
                Sh.Ok("ip", "-n", ns, "link", "set", dev, "up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Runs a program inside a namespace and returns its result.</summary>
    public (int Code, string Out, string Err) In(string ns, params string[] command) =>
        Sh.Run(TimeSpan.FromSeconds(120), "ip", ["netns", "exec", ns, .. command]);

    /// <summary>Starts a long-running program inside a namespace.</summary>
    public Background Start(string ns, string? readyText, params string[] command) =>
        new(readyText, "ip", ["netns", "exec", ns, .. command]);

    public void Dispose()
    {
        Sh.Run("ip", "netns", "del", NsA);
        Sh.Run("ip", "netns", "del", NsB);
    }
}
