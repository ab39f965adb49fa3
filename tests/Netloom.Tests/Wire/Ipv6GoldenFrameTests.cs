using System.Globalization;
using Netloom.Tests.Support;
using Netloom.Wire;

namespace Netloom.Tests.Wire;

/// <summary>
/// IPv6 frames captured from the Linux kernel across a veth pair with checksum offload off (MLDv2
/// reports behind a hop-by-hop header, DAD and address-resolution NDP, router solicitations, ping,
/// a 4000-byte ping in three fragments, TCP with options, UDP, a port unreachable) and six built
/// by scapy (a router advertisement with prefix, MTU and link-layer options, a redirect, Packet
/// Too Big, Time Exceeded, Parameter Problem, UDP behind hop-by-hop, destination-options and
/// routing headers). For each: tshark's reading of every field (recorded with
/// <c>tshark -T fields -E occurrence=f -o ipv6.defragment:FALSE</c>, tshark 4) equals ours, and
/// the frame re-emits byte for byte from its parsed form.
/// </summary>
public class Ipv6GoldenFrameTests
{
    internal static readonly string[] TsharkFields = ["ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.hlim", "ipv6.plen", "ipv6.flow", "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.ident", "icmpv6.type", "icmpv6.code", "icmpv6.checksum.status", "icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address", "icmpv6.nd.na.flag.s", "icmpv6.opt.linkaddr", "icmpv6.opt.prefix", "icmpv6.opt.prefix.length", "icmpv6.opt.mtu", "icmpv6.nd.ra.router_lifetime", "icmpv6.nd.ra.cur_hop_limit", "icmpv6.mldr.nb_mcast_records", "icmpv6.mldr.mar.multicast_address", "icmpv6.echo.identifier", "icmpv6.echo.sequence_number", "icmpv6.mtu", "icmpv6.nd.rd.target_address", "ipv6.hopopts.nxt", "ipv6.routing.segleft", "udp.srcport", "udp.dstport", "udp.checksum.status", "tcp.srcport", "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.checksum.status"];

    internal const string Mldv2Report = "333300000016020000000b0286dd600000000038000100000000000000000000000000000000ff0200000000000000000000000000163a000502000001008f00626c0000000204000000ff0200000000000000000001ff000b0204000000ff0200000000000000000001ff000002";
    internal const string DadSolicitation = "3333ff000002020000000b0286dd6000000000203aff00000000000000000000000000000000ff0200000000000000000001ff0000028700573a00000000fd0000200000000000000000000000020e01a1d1f46c8201";
    internal const string RouterSolicitation = "333300000002020000000a0186dd6000000000103afffe80000000000000000000fffe000a01ff0200000000000000000000000000028500672c000000000101020000000a01";
    internal const string NeighborSolicitation = "3333ff000002020000000a0186dd6000000000203afffd000020000000000000000000000001ff0200000000000000000001ff0000028700735700000000fd0000200000000000000000000000020101020000000a01";
    internal const string NeighborAdvertisement = "020000000a01020000000b0286dd6000000000203afffd000020000000000000000000000002fd0000200000000000000000000000018800113a60000000fd0000200000000000000000000000020201020000000b02";
    internal const string EchoRequest = "020000000b02020000000a0186dd6002ae9a00403a40fd000020000000000000000000000001fd0000200000000000000000000000028000dc7c6dbd0001de1c106b0000000082aa0b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    internal const string EchoReply = "020000000a01020000000b0286dd60081b1900403a40fd000020000000000000000000000002fd0000200000000000000000000000018100db7c6dbd0001de1c106b0000000082aa0b0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    internal const string FirstFragment = "020000000b02020000000a0186dd6002ae9a05b02c40fd000020000000000000000000000001fd0000200000000000000000000000023a000001a42ad9ce800067c96dbe0001de1c106b00000000ce320f0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
    internal const string MiddleFragment = "020000000b02020000000a0186dd6002ae9a05b02c40fd000020000000000000000000000001fd0000200000000000000000000000023a0005a9a42ad9cea0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f4041424344454647";
    internal const string LastFragment = "020000000b02020000000a0186dd6002ae9a04602c40fd000020000000000000000000000001fd0000200000000000000000000000023a000b50a42ad9ce48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
    internal const string TcpSyn = "020000000b02020000000a0186dd6009d1cd00280640fd000020000000000000000000000001fd000020000000000000000000000002be4e1f9004d03fb500000000a002fd20c28f0000020405a00402080a56a9150f000000000103030a";
    internal const string TcpSynAck = "020000000a01020000000b0286dd6002146100280640fd000020000000000000000000000002fd0000200000000000000000000000011f90be4e84fcd1c004d03fb6a012fb04bc7a0000020405a00402080a1a20974256a9150f0103030a";
    internal const string TcpData = "020000000a01020000000b0286dd6002146100d90640fd000020000000000000000000000002fd0000200000000000000000000000011f90be4e84fcd1c104d040108018003f3e7200000101080a1a20974a56a9150f485454502f312e3020323030204f4b0d0a5365727665723a2053696d706c65485454502f302e3620507974686f6e2f332e31312e370d0a446174653a205765642c2030322044656320323032362031333a32383a303120474d540d0a436f6e74656e742d747970653a20746578742f706c61696e0d0a436f6e74656e742d4c656e6774683a20360d0a4c6173742d4d6f6469666965643a205765642c2030322044656320323032362031333a32383a303120474d540d0a0d0a";
    internal const string Udp = "020000000b02020000000a0186dd6008330e00151140fd000020000000000000000000000001fd000020000000000000000000000002ea1615b3001556ac6e65746c6f6f6d2d756470360a";
    internal const string PortUnreachable = "020000000a01020000000b0286dd600eafb5003f3a40fd000020000000000000000000000002fd0000200000000000000000000000010104f5bd00000000600f9d41000f1140fd000020000000000000000000000001fd000020000000000000000000000002da8715b4000fd30b636c6f7365640a";
    internal const string RouterAdvertisement = "333300000001020000000b0286dd6000000000403afffe80000000000000000000fffe000b02ff0200000000000000000000000000018600ce724048070800007530000003e8030440c0000151800000384000000000fd00002000000000000000000000000005010000000005780101020000000b02";
    internal const string Redirect = "020000000a01020000000b0286dd6000000000303afffe80000000000000000000fffe000b02fd000020000000000000000000000001890064cb00000000fe800000000000000000000000000001fd0000990000000000000000000000050201020000000c03";
    internal const string PacketTooBig = "020000000a01020000000b0286dd6000000000783a40fd0000200000000000000000000000fefd0000200000000000000000000000010200639e000005006001234505801101fd000020000000000000000000000001fd0000990000000000000000000000059c4000090048594578787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878";
    internal const string TimeExceeded = "020000000a01020000000b0286dd6000000000783a40fd0000200000000000000000000000fefd0000200000000000000000000000010300679e000000006001234505801101fd000020000000000000000000000001fd0000990000000000000000000000059c4000090048594578787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878";
    internal const string ParameterProblem = "020000000a01020000000b0286dd6000000000783a40fd0000200000000000000000000000fefd00002000000000000000000000000104016675000000286001234505801101fd000020000000000000000000000001fd0000990000000000000000000000059c4000090048594578787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878";
    internal const string UdpBehindExtensionHeaders = "020000000b02020000000a0186dd600abcde003b0040fd000020000000000000000000000001fd0000200000000000000000000000023c000502000001002b000104000000001102000000000000fd00002000000000000000000000000204d215b300136f1c6578742d68656164657273";

    /// <summary>(name, frame, tshark's fields in <see cref="TsharkFields"/> order, joined by |, first occurrence of each).</summary>
    internal static readonly (string Name, string Hex, string Tshark)[] Frames =
    [
        ("Mldv2Report", Mldv2Report, "::|ff02::16|0|1|56|0x000000|||||143|0|1||||||||||2|ff02::1:ff00:b02|||||58||||||||"),
        ("DadSolicitation", DadSolicitation, "::|ff02::1:ff00:2|58|255|32|0x000000|||||135|0|1|fd00:20::2|||||||||||||||||||||||"),
        ("RouterSolicitation", RouterSolicitation, "fe80::ff:fe00:a01|ff02::2|58|255|16|0x000000|||||133|0|1||||02:00:00:00:0a:01||||||||||||||||||||"),
        ("NeighborSolicitation", NeighborSolicitation, "fd00:20::1|ff02::1:ff00:2|58|255|32|0x000000|||||135|0|1|fd00:20::2|||02:00:00:00:0a:01||||||||||||||||||||"),
        ("NeighborAdvertisement", NeighborAdvertisement, "fd00:20::2|fd00:20::1|58|255|32|0x000000|||||136|0|1||fd00:20::2|1|02:00:00:00:0b:02||||||||||||||||||||"),
        ("EchoRequest", EchoRequest, "fd00:20::1|fd00:20::2|58|64|64|0x02ae9a|||||128|0|1||||||||||||0x6dbd|1|||||||||||"),
        ("EchoReply", EchoReply, "fd00:20::2|fd00:20::1|58|64|64|0x081b19|||||129|0|1||||||||||||0x6dbd|1|||||||||||"),
        ("FirstFragment", FirstFragment, "fd00:20::1|fd00:20::2|44|64|1456|0x02ae9a|58|0|1|0xa42ad9ce|128|0|2||||||||||||0x6dbe|1|||||||||||"),
        ("MiddleFragment", MiddleFragment, "fd00:20::1|fd00:20::2|44|64|1456|0x02ae9a|58|181|1|0xa42ad9ce|||||||||||||||||||||||||||"),
        ("LastFragment", LastFragment, "fd00:20::1|fd00:20::2|44|64|1120|0x02ae9a|58|362|0|0xa42ad9ce|||||||||||||||||||||||||||"),
        ("TcpSyn", TcpSyn, "fd00:20::1|fd00:20::2|6|64|40|0x09d1cd||||||||||||||||||||||||||||48718|1440|10|1"),
        ("TcpSynAck", TcpSynAck, "fd00:20::2|fd00:20::1|6|64|40|0x021461||||||||||||||||||||||||||||8080|1440|10|1"),
        ("TcpData", TcpData, "fd00:20::2|fd00:20::1|6|64|217|0x021461||||||||||||||||||||||||||||8080|||1"),
        ("Udp", Udp, "fd00:20::1|fd00:20::2|17|64|21|0x08330e|||||||||||||||||||||||||59926|5555|1||||"),
        ("PortUnreachable", PortUnreachable, "fd00:20::2|fd00:20::1|58|64|63|0x0eafb5|||||1|4|1||||||||||||||||||55943|5556|1||||"),
        ("RouterAdvertisement", RouterAdvertisement, "fe80::ff:fe00:b02|ff02::1|58|255|64|0x000000|||||134|0|1||||02:00:00:00:0b:02|fd00:20::|64|1400|1800|64|||||||||||||||"),
        ("Redirect", Redirect, "fe80::ff:fe00:b02|fd00:20::1|58|255|48|0x000000|||||137|0|1||||02:00:00:00:0c:03|||||||||||fe80::1|||||||||"),
        ("PacketTooBig", PacketTooBig, "fd00:20::fe|fd00:20::1|58|64|120|0x000000|||||2|0|1||||||||||||||1280||||40000|9|1||||"),
        ("TimeExceeded", TimeExceeded, "fd00:20::fe|fd00:20::1|58|64|120|0x000000|||||3|0|1||||||||||||||||||40000|9|1||||"),
        ("ParameterProblem", ParameterProblem, "fd00:20::fe|fd00:20::1|58|64|120|0x000000|||||4|1|1||||||||||||||||||40000|9|1||||"),
        ("UdpBehindExtensionHeaders", UdpBehindExtensionHeaders, "fd00:20::1|fd00:20::2|0|64|59|0x0abcde|||||||||||||||||||||||60|0|1234|5555|1||||"),
    ];

    public static TheoryData<string> Names() => [.. Frames.Select(f => f.Name)];

    private static (string Hex, string Tshark) Get(string name) { var f = Frames.Single(x => x.Name == name); return (f.Hex, f.Tshark); }

    [Theory]
    [MemberData(nameof(Names))]
    public void Every_field_reads_as_tshark_reads_it(string name)
    {
        var (hex, tshark) = Get(name);
        string[] expected = tshark.Split('|');
        string[] ours = Fields(Hex.Bytes(hex));
        Assert.Equal(TsharkFields.Length, expected.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == ours[i], $"{name}: {TsharkFields[i]} is '{ours[i]}', tshark says '{expected[i]}'");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Emit_from_parsed_form_reproduces_the_original_bytes(string name)
    {
        byte[] frame = Hex.Bytes(Get(name).Hex);
        var d = DecodedFrame.Decode(frame);
        Assert.True(d.IsWellFormed, d.Error.ToString());
        Assert.True(d.ChecksumsOk);
        var again = new byte[frame.Length];
        again.AsSpan().Fill(0xA5);
        Assert.Equal(frame.Length, d.Emit(frame, again));
        Assert.Equal(Hex.Of(frame), Hex.Of(again));
    }

    [Fact]
    public void Ndp_messages_re_emit_from_their_repr_alone()
    {
        // Nothing of an NDP message is copied: the repr writes fields, options and checksum.
        foreach (var name in new[] { "DadSolicitation", "RouterSolicitation", "NeighborSolicitation", "NeighborAdvertisement", "RouterAdvertisement", "Redirect" })
        {
            var d = DecodedFrame.Decode(Hex.Bytes(Get(name).Hex));
            Assert.True(d.Has(FrameLayers.Ndp), name);
            Assert.Equal(d.Length, d.PayloadOffset);
        }
    }

    [Fact]
    public void Router_advertisement_options_are_typed()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(RouterAdvertisement));
        ref readonly var n = ref d.Ndp;
        Assert.Equal(64, n.CurHopLimit);
        Assert.Equal(NdpRepr.OtherFlag | 0x08, n.RouterFlags); // O, and scapy's default router preference "high" (RFC 4191 §2.2)
        Assert.Equal(1800, n.RouterLifetime);
        Assert.Equal(30000u, n.ReachableTime);
        Assert.Equal(1000u, n.RetransTimer);
        Assert.Equal(1, n.PrefixCount);
        var p = n.PrefixInfo(0);
        Assert.True(p.OnLink && p.Autonomous);
        Assert.Equal(86400u, p.ValidLifetime);
        Assert.Equal(14400u, p.PreferredLifetime);
        Assert.Equal(1400u, n.Mtu);
        Assert.Equal("02:00:00:00:0b:02", n.SourceLinkLayer.ToString());
        Assert.Equal(3, n.OptionCount);
    }

    [Fact]
    public void A_router_advertisement_built_in_code_equals_the_parsed_one()
    {
        var parsed = DecodedFrame.Decode(Hex.Bytes(RouterAdvertisement));
        var ra = NdpRepr.RouterAdvertisement(64, NdpRepr.OtherFlag | 0x08, 1800, 30000, 1000);
        ra.AddPrefix(parsed.Ndp.PrefixInfo(0));
        ra.SetMtu(1400);
        ra.SetSourceLinkLayer(MacAddress.Parse("02:00:00:00:0b:02")); // last, as scapy sent it
        var frame = Hex.Bytes(RouterAdvertisement);
        var built = new byte[ra.BufferLength];
        Assert.Equal(frame.Length - parsed.TransportOffset, ra.Emit(built, parsed.Ipv6.Source, parsed.Ipv6.Destination));
        Assert.Equal(Hex.Of(frame.AsSpan(parsed.TransportOffset)), Hex.Of(built));
    }

    [Fact]
    public void Extension_headers_are_walked_to_the_upper_layer()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(UdpBehindExtensionHeaders));
        ref readonly var x = ref d.Ipv6Extensions;
        Assert.Equal(3, x.HeaderCount);
        Assert.True(x.HasHopByHop && x.HasRouting);
        Assert.Equal((byte)IpProtocol.Udp, x.UpperLayer);
        Assert.Equal(0, x.SegmentsLeft);
        Assert.Equal(Ipv6OptionAction.Skip, x.UnknownOptionAction);
        Assert.Equal(0xabcdeu, d.Ipv6.FlowLabel);
        Assert.Equal("ext-headers", System.Text.Encoding.ASCII.GetString(Hex.Bytes(UdpBehindExtensionHeaders), d.PayloadOffset, d.PayloadLength));
    }

    [Fact]
    public void Mldv2_report_records_are_read()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(Mldv2Report));
        Assert.True(d.Ipv6Extensions.HasHopByHop); // Router Alert, RFC 3810 §5
        var frame = Hex.Bytes(Mldv2Report);
        Assert.True(Netloom.Wire.Mldv2Report.TryParse(frame.AsSpan(d.TransportOffset), out var r, out var e), e.ToString());
        Assert.Equal(2, r.RecordCount);
        int at = 0;
        Assert.True(r.TryReadRecord(ref at, out var first));
        Assert.True(r.TryReadRecord(ref at, out var second));
        Assert.Equal("ff02::1:ff00:b02", first.MulticastAddress.ToString());
        Assert.Equal("ff02::1:ff00:2", second.MulticastAddress.ToString());
        Assert.Equal(4, first.RecordType); // CHANGE_TO_EXCLUDE_MODE with no sources: joining
    }

    [Fact]
    public void Fragments_carry_offset_more_and_identification()
    {
        var first = DecodedFrame.Decode(Hex.Bytes(FirstFragment));
        var last = DecodedFrame.Decode(Hex.Bytes(LastFragment));
        Assert.True(first.Ipv6Extensions.IsFragment && first.Has(FrameLayers.Icmpv6));
        Assert.False(first.TransportChecksumKnown);
        Assert.False(last.Has(FrameLayers.Icmpv6));
        Assert.Equal(362, last.Ipv6Extensions.Fragment.FragmentOffset);
        Assert.False(last.Ipv6Extensions.Fragment.MoreFragments);
        Assert.Equal(first.Ipv6Extensions.Fragment.Identification, last.Ipv6Extensions.Fragment.Identification);
    }

    [Fact]
    public void Json_names_the_ipv6_and_icmpv6_fields()
    {
        var d = DecodedFrame.Decode(Hex.Bytes(MiddleFragment));
        using var ms = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(ms)) FrameFormatter.WriteJson(w, 1, d);
        string json = System.Text.Encoding.UTF8.GetString(ms.ToArray());
        Assert.Contains("\"ipv6\":{\"src\":\"fd00:20::1\",\"dst\":\"fd00:20::2\",\"next_header\":58,\"hop_limit\":64,\"payload_length\":1456,\"flow_label\":175770,\"fragment_offset\":181,\"more_fragments\":true}", json);
        d = DecodedFrame.Decode(Hex.Bytes(PacketTooBig));
        ms.SetLength(0);
        using (var w = new System.Text.Json.Utf8JsonWriter(ms)) FrameFormatter.WriteJson(w, 2, d);
        json = System.Text.Encoding.UTF8.GetString(ms.ToArray());
        Assert.Contains("\"icmpv6\":{\"type\":2,\"code\":0,\"checksum_ok\":true}", json);
    }

    /// <summary>Our decode, rendered as tshark renders each field of <see cref="TsharkFields"/>.</summary>
    private static string[] Fields(byte[] frame)
    {
        var d = DecodedFrame.Decode(frame);
        Assert.True(d.IsWellFormed, d.Error.ToString());
        var f = new Dictionary<string, string>();
        string N(long v) => v.ToString(CultureInfo.InvariantCulture);
        ref readonly var ip = ref d.Ipv6;
        ref readonly var x = ref d.Ipv6Extensions;
        f["ipv6.src"] = ip.Source.ToString();
        f["ipv6.dst"] = ip.Destination.ToString();
        f["ipv6.nxt"] = N(ip.NextHeader);
        f["ipv6.hlim"] = N(ip.HopLimit);
        f["ipv6.plen"] = N(ip.PayloadLength);
        f["ipv6.flow"] = $"0x{ip.FlowLabel:x6}";
        if (x.HasFragment)
        {
            f["ipv6.fraghdr.nxt"] = N(x.Fragment.NextHeader);
            f["ipv6.fraghdr.offset"] = N(x.Fragment.FragmentOffset);
            f["ipv6.fraghdr.more"] = x.Fragment.MoreFragments ? "1" : "0";
            f["ipv6.fraghdr.ident"] = $"0x{x.Fragment.Identification:x8}";
        }
        var payload = frame.AsSpan(d.NetworkOffset + Ipv6Repr.HeaderLength);
        if (x.HasHopByHop) f["ipv6.hopopts.nxt"] = N(payload[0]);
        if (x.HasRouting) f["ipv6.routing.segleft"] = N(x.SegmentsLeft);
        if (d.Has(FrameLayers.Icmpv6))
        {
            ref readonly var m = ref d.Icmpv6;
            f["icmpv6.type"] = N(m.Type);
            f["icmpv6.code"] = N(m.Code);
            f["icmpv6.checksum.status"] = d.TransportChecksumKnown ? (d.TransportChecksumOk ? "1" : "0") : "2";
            switch ((Icmpv6Type)m.Type)
            {
                case Icmpv6Type.EchoRequest or Icmpv6Type.EchoReply:
                    f["icmpv6.echo.identifier"] = $"0x{m.Identifier:x4}";
                    f["icmpv6.echo.sequence_number"] = N(m.SequenceNumber);
                    break;
                case Icmpv6Type.PacketTooBig:
                    f["icmpv6.mtu"] = N(m.Mtu);
                    break;
                case Icmpv6Type.Mldv2Report:
                    Assert.True(Netloom.Wire.Mldv2Report.TryParse(frame.AsSpan(d.TransportOffset), out var r, out _));
                    f["icmpv6.mldr.nb_mcast_records"] = N(r.RecordCount);
                    int at = 0;
                    if (r.TryReadRecord(ref at, out var rec)) f["icmpv6.mldr.mar.multicast_address"] = rec.MulticastAddress.ToString();
                    break;
            }
            if (m.IsError)
            {
                // tshark decodes the quoted packet too; its first UDP fields are the quoted datagram's.
                Assert.True(Icmpv6Message.TryParse(frame.AsSpan(d.TransportOffset), out var msg, out _));
                Assert.True(msg.TryGetQuoted(out var q, out _));
                Assert.True(Ipv6Extensions.TryParse(q.NextHeader, q.Payload, out var qx, out _));
                var l4 = q.Payload[qx.UpperLayerOffset..];
                if (qx.UpperLayer == (byte)IpProtocol.Udp && l4.Length >= 8)
                {
                    f["udp.srcport"] = N(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(l4));
                    f["udp.dstport"] = N(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(l4[2..]));
                    Assert.True(UdpDatagram.TryParse(l4, out var qu, out _));
                    f["udp.checksum.status"] = qu.ChecksumValid(q.Source, q.Destination) ? "1" : "0";
                }
            }
        }
        if (d.Has(FrameLayers.Ndp))
        {
            ref readonly var n = ref d.Ndp;
            switch ((Icmpv6Type)n.Type)
            {
                case Icmpv6Type.NeighborSolicitation: f["icmpv6.nd.ns.target_address"] = n.Target.ToString(); break;
                case Icmpv6Type.NeighborAdvertisement:
                    f["icmpv6.nd.na.target_address"] = n.Target.ToString();
                    f["icmpv6.nd.na.flag.s"] = (n.NeighborFlags & NdpRepr.SolicitedFlag) != 0 ? "1" : "0";
                    break;
                case Icmpv6Type.RouterAdvertisement:
                    f["icmpv6.nd.ra.router_lifetime"] = N(n.RouterLifetime);
                    f["icmpv6.nd.ra.cur_hop_limit"] = N(n.CurHopLimit);
                    break;
                case Icmpv6Type.Redirect: f["icmpv6.nd.rd.target_address"] = n.Target.ToString(); break;
            }
            if ((n.SourceLinkLayer ?? n.TargetLinkLayer) is { } mac) f["icmpv6.opt.linkaddr"] = mac.ToString();
            if (n.PrefixCount > 0)
            {
                f["icmpv6.opt.prefix"] = n.PrefixInfo(0).Prefix.ToString();
                f["icmpv6.opt.prefix.length"] = N(n.PrefixInfo(0).PrefixLength);
            }
            if (n.Mtu is uint mtu) f["icmpv6.opt.mtu"] = N(mtu);
        }
        if (d.Has(FrameLayers.Udp))
        {
            f["udp.srcport"] = N(d.Udp.SourcePort);
            f["udp.dstport"] = N(d.Udp.DestinationPort);
            f["udp.checksum.status"] = d.TransportChecksumOk ? "1" : "0";
        }
        if (d.Has(FrameLayers.Tcp))
        {
            f["tcp.srcport"] = N(d.Tcp.SourcePort);
            if (d.Tcp.MaxSegmentSize is ushort mss) f["tcp.options.mss_val"] = N(mss);
            if (d.Tcp.WindowScale is byte ws) f["tcp.options.wscale.shift"] = N(ws);
            f["tcp.checksum.status"] = d.TransportChecksumOk ? "1" : "0";
        }
        return [.. TsharkFields.Select(k => f.GetValueOrDefault(k, ""))];
    }
}
