using Netloom.Rings;

namespace Netloom.Tests.Rings;

public class PortSpecTests
{
    [Theory]
    [InlineData("pipe:a{0", PortKind.Pipe, "a", 0, true)]
    [InlineData("pipe:link-1.x}12", PortKind.Pipe, "link-1.x", 12, false)]
    [InlineData("shm:sw0", PortKind.Shm, "sw0", 0, false)]
    [InlineData("tap:nl0", PortKind.Tap, "nl0", 0, false)]
    [InlineData("afpacket:veth-a", PortKind.AfPacket, "veth-a", 0, false)]
    [InlineData("xdp:veth-a", PortKind.Xdp, "veth-a", 0, false)]
    [InlineData("xdp:eth0:3", PortKind.Xdp, "eth0", 3, false)]
    public void Valid_specs_parse_and_print_back(string text, PortKind kind, string name, int id, bool master)
    {
        var s = PortSpec.Parse(text);
        Assert.Equal(new PortSpec(kind, name, id, master), s);
        Assert.Equal(text, s.ToString());
    }

    [Theory]
    [InlineData("", "empty port spec")]
    [InlineData("pipe:a", "pipe:NAME{N")]
    [InlineData("pipe:a{x", "pipe:NAME{N")]
    [InlineData("pipe:a b{0", "pipe:NAME{N")]
    [InlineData("shm:", "shm name")]
    [InlineData("shm:../etc", "shm name")]
    [InlineData("tap:", "interface name")]
    [InlineData("tap:abcdefghijklmnop", "interface name")]
    [InlineData("afpacket:a/b", "interface name")]
    [InlineData("eth0", "not a port spec")]
    [InlineData("xdp:", "interface name")]
    [InlineData("xdp:eth0:", "xdp:IFNAME:QUEUE")]
    [InlineData("xdp:eth0:x", "xdp:IFNAME:QUEUE")]
    [InlineData("xdp:eth0:123456", "xdp:IFNAME:QUEUE")]
    [InlineData("xdp:a/b", "interface name")]
    public void Invalid_specs_say_what_is_expected(string text, string fragment)
    {
        Assert.False(PortSpec.TryParse(text, out _, out var error));
        Assert.Contains(fragment, error);
    }
}
