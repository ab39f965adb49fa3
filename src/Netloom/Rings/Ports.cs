namespace Netloom.Rings;

/// <summary>Opens a port from its spec string.</summary>
public static class Ports
{
    public static IPort Open(string spec, PortOptions? options = null) => Open(PortSpec.Parse(spec), options);

    public static IPort Open(PortSpec spec, PortOptions? options = null) => spec.Kind switch
    {
        PortKind.Pipe => PipePort.Open(spec, options),
        PortKind.Shm => ShmPort.Open(spec, options),
        PortKind.Tap => TapPort.Open(spec, options),
        PortKind.Xdp => XdpPort.Open(spec, options),
        _ => AfPacketPort.Open(spec, options),
    };
}
