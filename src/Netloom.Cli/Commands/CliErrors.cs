namespace Netloom.Cli.Commands;

/// <summary>Exit codes and the one way verbs report a failure the user can act on.</summary>
internal static class CliErrors
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int BadInput = 2;

    public static int Report(string message, int code = Failed)
    {
        Console.Error.WriteLine($"netloom: {message}");
        return code;
    }
}
