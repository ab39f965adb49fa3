using System.CommandLine;
using System.CommandLine.Help;
using Netloom.Cli.Commands;

namespace Netloom.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // A plain command rather than RootCommand, so usage says "netloom" whatever the binary is called.
        var root = new Command("netloom", "Netloom: kernel-bypass networking for .NET on Linux (rings, switch, user-level stack, io_uring, emulator).")
        {
            new HelpOption(),
            new VersionOption(),
            DemoCommand.Create(),
            PcapCommand.Create(),
            PktgenCommand.Create(),
            SwitchCommand.Create(),
            HostCommand.Create(),
            GetCommand.Create(),
            KvCommand.Create(),
            EmulateCommand.Create(),
            Emulate.ExtcapCommand.Create(),
            RunCommand.Create(),
            BenchCommand.Create(),
        };
        // The emulator's process nodes start programs under `netloom run`, and say what they print.
        Netloom.Emulation.ProcessNode.Launcher = SelfProcess.NetloomStartInfo;
        Netloom.Emulation.ProcessNode.Output = Console.Error.WriteLine;
        return root.Parse(args).Invoke();
    }
}
