using Netloom.Wire;

namespace Netloom.Stack;

/// <summary>Connection states (RFC 9293 §3.3.2).</summary>
internal enum TcpState : byte { Closed, Listen, SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait }

/// <summary>Why a connection ended other than by an orderly close.</summary>
public enum TcpError : byte
{
    None,
    Refused,     // RST (or ICMP unreachable) in answer to our SYN
    Reset,       // the peer reset an established connection
    TimedOut,    // retransmissions, keep-alive probes or the user timeout ran out
    Aborted,     // this side aborted (RST sent)
}

/// <summary>What changed on a connection or listener; observers hear it on the stack's thread.</summary>
[Flags]
internal enum SocketEvents : byte
{
    None = 0,
    Connected = 1,
    Readable = 2,   // data arrived, or the peer finished sending
    Writable = 4,   // send buffer space was freed
    Closed = 8,     // the connection reached CLOSED (see Error) or TIME_WAIT
    Acceptable = 16,
}

/// <summary>Told about connection events, on the stack's thread with the stack lock held: keep it short.</summary>
internal interface ISocketObserver
{
    void OnSocketEvents(object socket, SocketEvents events);
}
