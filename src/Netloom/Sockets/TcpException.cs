using Netloom.Stack;

namespace Netloom.Sockets;

/// <summary>A connection failed: refused, reset, timed out or aborted (see <see cref="Error"/>).</summary>
public sealed class TcpException(TcpError error, string message) : IOException(message)
{
    public TcpError Error { get; } = error;

    internal static TcpException From(TcpSocket s) => new(s.Error, s.Error switch
    {
        TcpError.Refused => $"connection to {s.Remote} refused",
        TcpError.Reset => $"connection to {s.Remote} reset by the peer",
        TcpError.TimedOut => $"connection to {s.Remote} timed out",
        _ => $"connection to {s.Remote} aborted",
    });
}
