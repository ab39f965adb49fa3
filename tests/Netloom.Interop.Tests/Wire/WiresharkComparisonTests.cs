using System.Globalization;
using Netloom.Interop.Tests.Support;
using Netloom.Wire;
using Netloom.Wire.Capture;
using Xunit.Abstractions;

namespace Netloom.Interop.Tests.Wire;

/// <summary>
/// Real Linux traffic (ARP, ping, fragmented ping, UDP, an ICMP port unreachable, HTTP over TCP,
/// a VLAN-tagged ping) captured in namespaces this test makes, decoded by tshark and by the wire
/// layer, compared field by field.
/// </summary>
public class WiresharkComparisonTests(ITestOutputHelper output)
{
    private static readonly string[] FieldNames =
    [
        "frame.number", "frame.len", "eth.src", "eth.dst", "eth.type", "ieee8021ad.id", "vlan.id", "vlan.etype",
        "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4",
        "ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.id", "ip.frag_offset", "ip.flags.mf", "ip.flags.df", "ip.hdr_len", "ip.len", "ip.checksum.status",
        "icmp.type", "icmp.code", "icmp.checksum.status",
        "udp.srcport", "udp.dstport", "udp.length", "udp.checksum.status",
        "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.window_size_value", "tcp.hdr_len", "tcp.len", "tcp.checksum.status",
        "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.sack_perm", "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr",
    ];

    [RootFact("tshark", "tcpdump", "ping", "socat", "curl", "/usr/bin/python3", "scapy")]
    public void Kernel_traffic_decodes_exactly_as_wireshark_decodes_it()
    {
        using var dir = new TempDir();
        string pcap = dir.File("kernel.pcap"), pcapng = dir.File("kernel.pcapng");
        File.WriteAllBytes(dir.File("file.bin"), [.. Enumerable.Range(0, 300_000).Select(i => (byte)(i * 31))]);

        using (var net = new NetnsPair())
        {
            using var tcpdump = net.Start(net.NsA, "listening on", "tcpdump", "-i", net.IfA, "-w", pcap, "-U", "--time-stamp-precision=nano");
            using var dumpcap = net.Start(net.NsB, "Capturing on", "tshark", "-i", net.IfB, "-w", pcapng, "-q");
            tcpdump.WaitReady();
            dumpcap.WaitReady();
            using var http = net.Start(net.NsB, "Serving HTTP", "/usr/bin/python3", "-u", "-m", "http.server", "8080", "--bind", net.IpB, "--directory", dir.Path);
            http.WaitReady();
            using var udpSink = net.Start(net.NsB, null, "socat", "-u", $"UDP-RECV:5555,bind={net.IpB}", "OPEN:/dev/null");
            Thread.Sleep(300);

            Assert.Equal(0, net.In(net.NsA, "ping", "-c", "5", "-i", "0.2", net.IpB).Code);
            Assert.Equal(0, net.In(net.NsA, "ping", "-c", "2", "-i", "0.2", "-s", "4000", net.IpB).Code);
            // This kernel has no 802.1Q module, so scapy puts tagged frames (one and two tags) on the wire.
            string scapy = "from scapy.all import *; conf.verb=0; " +
                $"sendp(Ether(dst='ff:ff:ff:ff:ff:ff')/Dot1Q(vlan=42,prio=5)/IP(src='{net.IpA}',dst='{net.IpB}')/ICMP(id=7,seq=1)/b'tagged', iface='{net.IfA}'); " +
                $"sendp(Ether(dst='ff:ff:ff:ff:ff:ff')/Dot1AD(vlan=100)/Dot1Q(vlan=42)/IP(src='{net.IpA}',dst='{net.IpB}')/UDP(sport=9,dport=9)/b'qinq', iface='{net.IfA}')";
            var sent = net.In(net.NsA, "/usr/bin/python3", "-c", scapy);
            Assert.True(sent.Code == 0, sent.Err);
            Assert.Equal(0, net.In(net.NsA, "sh", "-c", $"echo netloom-udp | socat - UDP:{net.IpB}:5555").Code);
            net.In(net.NsA, "sh", "-c", $"echo closed-port | socat - UDP:{net.IpB}:5556"); // answered by ICMP port unreachable
            var curl = net.In(net.NsA, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", $"http://{net.IpB}:8080/file.bin");
            Assert.Equal("200", curl.Out);
            Thread.Sleep(500);
            tcpdump.Stop();
            dumpcap.Stop();
        }

        var coverage = new Dictionary<string, int>();
        foreach (var file in new[] { pcap, pcapng })
        {
            int frames = Compare(file, coverage);
            output.WriteLine($"{Path.GetFileName(file)}: {frames} frames agree with tshark");
        }
        output.WriteLine(string.Join(", ", coverage.Select(kv => $"{kv.Key}={kv.Value}")));
        // The traffic must have exercised every layer, or the comparison proves little.
        foreach (var kind in new[] { "arp", "icmp-echo", "icmp-error", "fragment", "udp", "tcp-options", "tcp-data", "vlan", "qinq", "reencoded" })
            Assert.True(coverage.GetValueOrDefault(kind) > 0, $"no {kind} frames were captured");
    }

    private int Compare(string file, Dictionary<string, int> coverage)
    {
        var expected = Tshark.Fields(file, FieldNames);
        using var reader = CaptureReader.Open(file);
        var emitted = new byte[70_000];
        int n = 0;
        while (reader.Read(out var p) == CaptureReadResult.Packet)
        {
            Assert.True(n < expected.Count, $"{file}: we read more frames than tshark");
            var row = expected[n++];
            var d = DecodedFrame.Decode(p.Data);
            string where = $"{Path.GetFileName(file)} frame {n}";
            Assert.True(d.IsWellFormed, $"{where}: {d.Error}");
            CompareFrame(row, d, p.Data.Length, where, coverage);
            if (d.ChecksumsOk)
            {
                int len = d.Emit(p.Data, emitted);
                Assert.True(emitted.AsSpan(0, len).SequenceEqual(p.Data), $"{where}: re-emitted bytes differ");
                Count(coverage, "reencoded");
            }
        }
        Assert.Null(reader.Error);
        Assert.Equal(expected.Count, n);
        return n;
    }

    private static void Count(Dictionary<string, int> c, string k) => c[k] = c.GetValueOrDefault(k) + 1;

    private static void Same(string where, string field, string tshark, object ours)
    {
        string mine = ours switch
        {
            bool b => b ? "1" : "0",
            _ => Convert.ToString(ours, CultureInfo.InvariantCulture) ?? "",
        };
        Assert.True(tshark == mine, $"{where}: {field} is '{tshark}' in tshark but '{mine}' in netloom");
    }

    private static string Hex4(int v) => $"0x{v:x4}";

    /// <summary>tshark's checksum status: 0 bad, 1 good, 2 unverified, 3 not present.</summary>
    private static void SameChecksum(string where, string field, string status, bool known, bool ok)
    {
        if (status is "" or "2") { Assert.False(known && !ok, $"{where}: {field} unverified by tshark but bad in netloom"); return; }
        Assert.True(known, $"{where}: {field} checked by tshark ({status}) but not by netloom");
        Same(where, field, status == "3" ? "1" : status, ok);
    }

    private static void CompareFrame(Dictionary<string, string> r, in DecodedFrame d, int length, string where, Dictionary<string, int> coverage)
    {
        Same(where, "frame.len", r["frame.len"], length);
        Same(where, "eth.src", r["eth.src"], d.Ethernet.Source);
        Same(where, "eth.dst", r["eth.dst"], d.Ethernet.Destination);
        if (r["ieee8021ad.id"] != "")
        {
            // 802.1ad: Wireshark shows the service tag as ieee8021ad and the customer tag as vlan.
            Count(coverage, "qinq");
            Assert.Equal(2, d.Ethernet.TagCount);
            Same(where, "ieee8021ad.id", r["ieee8021ad.id"], d.Ethernet.OuterTag.VlanId);
            Same(where, "vlan.id", r["vlan.id"], d.Ethernet.InnerTag.VlanId);
            Same(where, "vlan.etype", r["vlan.etype"], Hex4(d.Ethernet.EtherType));
        }
        else if (r["vlan.id"] != "")
        {
            Count(coverage, "vlan");
            Assert.Equal(1, d.Ethernet.TagCount);
            Same(where, "vlan.id", r["vlan.id"], d.Ethernet.VlanId!.Value);
            Same(where, "vlan.etype", r["vlan.etype"], Hex4(d.Ethernet.EtherType));
        }
        else
        {
            Assert.Equal(0, d.Ethernet.TagCount);
            Same(where, "eth.type", r["eth.type"], Hex4(d.Ethernet.EtherType));
        }

        Assert.Equal(r["arp.opcode"] != "", d.Has(FrameLayers.Arp));
        if (d.Has(FrameLayers.Arp))
        {
            Count(coverage, "arp");
            Same(where, "arp.opcode", r["arp.opcode"], d.Arp.Operation);
            Same(where, "arp.src.hw_mac", r["arp.src.hw_mac"], d.Arp.SenderMac);
            Same(where, "arp.src.proto_ipv4", r["arp.src.proto_ipv4"], d.Arp.SenderIp);
            Same(where, "arp.dst.hw_mac", r["arp.dst.hw_mac"], d.Arp.TargetMac);
            Same(where, "arp.dst.proto_ipv4", r["arp.dst.proto_ipv4"], d.Arp.TargetIp);
        }

        Assert.Equal(r["ip.src"] != "", d.Has(FrameLayers.Ipv4));
        if (!d.Has(FrameLayers.Ipv4)) return;
        ref readonly var ip = ref d.Ipv4;
        Same(where, "ip.src", r["ip.src"], ip.Source);
        Same(where, "ip.dst", r["ip.dst"], ip.Destination);
        Same(where, "ip.proto", r["ip.proto"], ip.Protocol);
        Same(where, "ip.ttl", r["ip.ttl"], ip.Ttl);
        Same(where, "ip.id", r["ip.id"], Hex4(ip.Identification));
        Same(where, "ip.frag_offset", r["ip.frag_offset"], ip.FragmentOffset);
        Same(where, "ip.flags.mf", r["ip.flags.mf"], ip.MoreFragments);
        Same(where, "ip.flags.df", r["ip.flags.df"], ip.DontFragment);
        Same(where, "ip.hdr_len", r["ip.hdr_len"], ip.HeaderLength);
        Same(where, "ip.len", r["ip.len"], ip.TotalLength);
        SameChecksum(where, "ip.checksum.status", r["ip.checksum.status"], true, d.Ipv4ChecksumOk);
        if (ip.MoreFragments || ip.FragmentOffset != 0) Count(coverage, "fragment");

        // A later fragment carries no transport header for either decoder.
        Assert.Equal(r["icmp.type"] != "", d.Has(FrameLayers.Icmp));
        if (d.Has(FrameLayers.Icmp))
        {
            Same(where, "icmp.type", r["icmp.type"], d.Icmp.Type);
            Same(where, "icmp.code", r["icmp.code"], d.Icmp.Code);
            SameChecksum(where, "icmp.checksum.status", r["icmp.checksum.status"], d.TransportChecksumKnown, d.TransportChecksumOk);
            Count(coverage, d.Icmp.Type is 0 or 8 ? "icmp-echo" : "icmp-error");
            return; // tshark's udp/tcp fields in an ICMP error belong to the quoted datagram
        }
        Assert.Equal(r["udp.srcport"] != "", d.Has(FrameLayers.Udp));
        if (d.Has(FrameLayers.Udp))
        {
            Count(coverage, "udp");
            Same(where, "udp.srcport", r["udp.srcport"], d.Udp.SourcePort);
            Same(where, "udp.dstport", r["udp.dstport"], d.Udp.DestinationPort);
            Same(where, "udp.length", r["udp.length"], d.Udp.BufferLength);
            SameChecksum(where, "udp.checksum.status", r["udp.checksum.status"], d.TransportChecksumKnown, d.TransportChecksumOk);
        }
        Assert.Equal(r["tcp.srcport"] != "", d.Has(FrameLayers.Tcp));
        if (d.Has(FrameLayers.Tcp))
        {
            ref readonly var t = ref d.Tcp;
            Same(where, "tcp.srcport", r["tcp.srcport"], t.SourcePort);
            Same(where, "tcp.dstport", r["tcp.dstport"], t.DestinationPort);
            Same(where, "tcp.seq_raw", r["tcp.seq_raw"], t.SequenceNumber);
            Same(where, "tcp.ack_raw", r["tcp.ack_raw"], t.AcknowledgmentNumber);
            Same(where, "tcp.flags", r["tcp.flags"], Hex4((int)t.Flags));
            Same(where, "tcp.window_size_value", r["tcp.window_size_value"], t.Window);
            Same(where, "tcp.hdr_len", r["tcp.hdr_len"], t.HeaderLength);
            Same(where, "tcp.len", r["tcp.len"], t.PayloadLength);
            SameChecksum(where, "tcp.checksum.status", r["tcp.checksum.status"], d.TransportChecksumKnown, d.TransportChecksumOk);
            Same(where, "tcp.options.mss_val", r["tcp.options.mss_val"], t.MaxSegmentSize?.ToString() ?? "");
            Same(where, "tcp.options.wscale.shift", r["tcp.options.wscale.shift"], t.WindowScale?.ToString() ?? "");
            Assert.Equal(r["tcp.options.sack_perm"] != "", t.SackPermitted);
            Same(where, "tcp.options.timestamp.tsval", r["tcp.options.timestamp.tsval"], t.Timestamp?.Value.ToString() ?? "");
            Same(where, "tcp.options.timestamp.tsecr", r["tcp.options.timestamp.tsecr"], t.Timestamp?.Echo.ToString() ?? "");
            if (t.MaxSegmentSize is not null) Count(coverage, "tcp-options");
            if (t.PayloadLength > 0) Count(coverage, "tcp-data");
        }
    }
}
