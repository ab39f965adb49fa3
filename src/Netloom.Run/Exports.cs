using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>
/// The engine's only exported symbol, <c>netloom_engine_attach</c>, and the entry points it hands
/// the interposer. Each entry is a trampoline: an exception must never cross into C (NativeAOT
/// would fail the process), so a bug becomes EIO and one line on stderr.
/// </summary>
internal static unsafe class Exports
{
    private static EngineTable* _table;
    private static ISocketEngine _engine = null!;

    [UnmanagedCallersOnly(EntryPoint = "netloom_engine_attach")]
    public static EngineTable* Attach(HostTable* host) => AttachCore(host);

    private static EngineTable* AttachCore(HostTable* host)
    {
        try
        {
            if (host is null || host->Version != Abi.Version || host->Size != sizeof(HostTable)) return null;
            ISocketEngine? engine = Environment.GetEnvironmentVariable("NETLOOM_MODE") switch
            {
                null or "" or "stack" => Engine.Start(host),
                "offload" => OffloadEngine.Start(host),
                var other => Unknown(host, other),
            };
            if (engine is null) return null;
            _engine = engine;
            var t = (EngineTable*)NativeMemory.AllocZeroed((nuint)sizeof(EngineTable));
            t->Version = Abi.Version;
            t->Size = sizeof(EngineTable);
            t->Socket = &Socket;
            t->Close = &Close;
            t->Dup = &Dup;
            t->Bind = &Bind;
            t->Listen = &Listen;
            t->Accept4 = &Accept4;
            t->Connect = &Connect;
            t->Shutdown = &Shutdown;
            t->GetSockOpt = &GetSockOpt;
            t->SetSockOpt = &SetSockOpt;
            t->GetSockName = &GetSockName;
            t->GetPeerName = &GetPeerName;
            t->RecvMsg = &RecvMsg;
            t->SendMsg = &SendMsg;
            t->Fcntl = &Fcntl;
            t->Ioctl = &Ioctl;
            t->Poll = &Poll;
            t->Select = &Select;
            t->EpollCtl = &EpollCtl;
            t->EpollWait = &EpollWait;
            t->EpollClose = &EpollClose;
            t->SendFile = &SendFile;
            t->AtExit = &AtExit;
            if (engine is OffloadEngine)
            {
                t->CloseFile = &CloseFile;
                t->Settle = &Settle;
            }
            return _table = t;
        }
        catch (Exception e)
        {
            Engine.Warn($"the engine failed to start ({e.GetType().Name}: {e.Message}); this program's sockets stay on the kernel");
            return null;
        }
    }

    private static ISocketEngine? Unknown(HostTable* host, string mode)
    {
        Engine.SetHost(host);
        Engine.Warn($"NETLOOM_MODE '{mode}' is neither 'stack' nor 'offload'; this program's sockets stay on the kernel");
        return null;
    }

    private static int _failures;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long Failed(Exception e, string call)
    {
        if (Interlocked.Increment(ref _failures) <= 3) Engine.Warn($"{call} failed inside the engine: {e.GetType().Name}: {e.Message}");
        return -Errno.EIO;
    }

    [UnmanagedCallersOnly] private static long Socket(int d, int t, int p) { try { return _engine.Socket(d, t, p); } catch (Exception e) { return Failed(e, "socket"); } }
    [UnmanagedCallersOnly] private static long Close(int fd) { try { return _engine.Close(fd); } catch (Exception e) { return Failed(e, "close"); } }
    [UnmanagedCallersOnly] private static long Dup(int o, int n) { try { return _engine.Dup(o, n); } catch (Exception e) { return Failed(e, "dup"); } }
    [UnmanagedCallersOnly] private static long Bind(int fd, byte* a, uint l) { try { return _engine.Bind(fd, a, l); } catch (Exception e) { return Failed(e, "bind"); } }
    [UnmanagedCallersOnly] private static long Listen(int fd, int b) { try { return _engine.Listen(fd, b); } catch (Exception e) { return Failed(e, "listen"); } }
    [UnmanagedCallersOnly] private static long Accept4(int fd, byte* a, uint* l, int f) { try { return _engine.Accept(fd, a, l, f); } catch (Exception e) { return Failed(e, "accept"); } }
    [UnmanagedCallersOnly] private static long Connect(int fd, byte* a, uint l) { try { return _engine.Connect(fd, a, l); } catch (Exception e) { return Failed(e, "connect"); } }
    [UnmanagedCallersOnly] private static long Shutdown(int fd, int h) { try { return _engine.Shutdown(fd, h); } catch (Exception e) { return Failed(e, "shutdown"); } }
    [UnmanagedCallersOnly] private static long GetSockOpt(int fd, int lv, int n, byte* v, uint* l) { try { return _engine.GetSockOpt(fd, lv, n, v, l); } catch (Exception e) { return Failed(e, "getsockopt"); } }
    [UnmanagedCallersOnly] private static long SetSockOpt(int fd, int lv, int n, byte* v, uint l) { try { return _engine.SetSockOpt(fd, lv, n, v, l); } catch (Exception e) { return Failed(e, "setsockopt"); } }
    [UnmanagedCallersOnly] private static long GetSockName(int fd, byte* a, uint* l) { try { return _engine.GetSockName(fd, a, l); } catch (Exception e) { return Failed(e, "getsockname"); } }
    [UnmanagedCallersOnly] private static long GetPeerName(int fd, byte* a, uint* l) { try { return _engine.GetPeerName(fd, a, l); } catch (Exception e) { return Failed(e, "getpeername"); } }
    [UnmanagedCallersOnly] private static long RecvMsg(int fd, MsgHdr* m, int f) { try { return _engine.RecvMsg(fd, m, f); } catch (Exception e) { return Failed(e, "recv"); } }
    [UnmanagedCallersOnly] private static long SendMsg(int fd, MsgHdr* m, int f) { try { return _engine.SendMsg(fd, m, f); } catch (Exception e) { return Failed(e, "send"); } }
    [UnmanagedCallersOnly] private static long Fcntl(int fd, int c, long a) { try { return _engine.Fcntl(fd, c, a); } catch (Exception e) { return Failed(e, "fcntl"); } }
    [UnmanagedCallersOnly] private static long Ioctl(int fd, nuint r, byte* a) { try { return _engine.Ioctl(fd, r, a); } catch (Exception e) { return Failed(e, "ioctl"); } }
    [UnmanagedCallersOnly] private static long Poll(PollFd* f, ulong n, long t, void* m) { try { return _engine.Poll(f, n, t, m); } catch (Exception e) { return Failed(e, "poll"); } }
    [UnmanagedCallersOnly] private static long Select(int n, ulong* r, ulong* w, ulong* x, long t, void* m) { try { return _engine.Select(n, r, w, x, t, m); } catch (Exception e) { return Failed(e, "select"); } }
    [UnmanagedCallersOnly] private static long EpollCtl(int ep, int op, int fd, EpollEvent* ev) { try { return _engine.EpollCtl(ep, op, fd, ev); } catch (Exception e) { return Failed(e, "epoll_ctl"); } }
    [UnmanagedCallersOnly] private static long EpollWait(int ep, EpollEvent* ev, int max, long t, void* m) { try { return _engine.EpollWait(ep, ev, max, t, m); } catch (Exception e) { return Failed(e, "epoll_wait"); } }
    [UnmanagedCallersOnly] private static long CloseFile(int fd) { try { return ((OffloadEngine)_engine).CloseFile(fd); } catch (Exception e) { return Failed(e, "close"); } }
    [UnmanagedCallersOnly] private static long Settle(int fd) { try { return ((OffloadEngine)_engine).Settle(fd); } catch (Exception e) { return Failed(e, "dup2"); } }
    [UnmanagedCallersOnly] private static long EpollClose(int ep) { try { return _engine.EpollClose(ep); } catch (Exception e) { return Failed(e, "close"); } }
    [UnmanagedCallersOnly] private static long SendFile(int o, int i, long* off, nuint n) { try { return _engine.SendFile(o, i, off, n); } catch (Exception e) { return Failed(e, "sendfile"); } }
    [UnmanagedCallersOnly] private static void AtExit() { try { _engine.Exit(); } catch (Exception e) { Failed(e, "exit"); } }
}
