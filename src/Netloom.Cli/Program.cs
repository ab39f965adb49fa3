using System.CommandLine;
using Netloom.Cli.Commands;

namespace Netloom.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("Netloom: kernel-bypass networking for .NET on Linux (rings, switch, user-level stack, io_uring, emulator).")
        {
            DemoCommand.Create(),
            PcapCommand.Create(),
        };
        return root.Parse(args).Invoke();
    }
}
