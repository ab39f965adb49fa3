using Microsoft.Extensions.Logging;
using Netloom.Rings;
using Netloom.Wire;

namespace Netloom.Sockets;

/// <summary>
/// The socket layer's log messages, source-generated ([LoggerMessage]): a disabled level costs one
/// check and allocates nothing. Event ids 1xx belong to the socket layer.
/// </summary>
internal static partial class SocketsLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Debug, Message = "stack {Address} started on port {Port} ({Wait})")]
    public static partial void StackStarted(ILogger logger, Ipv4Address address, string port, WaitMode wait);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "stack {Address}: the owner thread failed; socket calls now throw")]
    public static partial void OwnerFailed(ILogger logger, Exception exception, Ipv4Address address);

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "stack {Address} stopped")]
    public static partial void StackStopped(ILogger logger, Ipv4Address address);
}
