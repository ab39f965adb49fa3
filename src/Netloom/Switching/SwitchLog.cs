using Microsoft.Extensions.Logging;
using Netloom.Rings;

namespace Netloom.Switching;

/// <summary>
/// The switch's log messages, source-generated ([LoggerMessage]): a disabled level costs one check
/// and allocates nothing. Nothing here runs per frame. Event ids 2xx belong to the switch.
/// </summary>
internal static partial class SwitchLog
{
    [LoggerMessage(EventId = 200, Level = LogLevel.Debug, Message = "switch {Switch}: port {Index} is {Name}")]
    public static partial void PortAdded(ILogger logger, int @switch, int index, string name);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "switch {Switch}: capturing port {Name}")]
    public static partial void CaptureStarted(ILogger logger, int @switch, string name);

    [LoggerMessage(EventId = 202, Level = LogLevel.Debug, Message = "switch {Switch}: forwarding between {Ports} ports ({Wait})")]
    public static partial void Running(ILogger logger, int @switch, int ports, WaitMode wait);

    [LoggerMessage(EventId = 203, Level = LogLevel.Debug, Message = "switch {Switch} stopped forwarding")]
    public static partial void Stopped(ILogger logger, int @switch);
}
