// The kernel structs the engine shares with the library's system-call layer: one definition each.
global using IoVec = Netloom.Interop.Libc.IoVec;
global using MsgHdr = Netloom.Interop.Libc.MsgHdr;
global using PollFd = Netloom.Interop.Libc.PollFd;
global using Errno = Netloom.Interop.Errno;
global using Libc = Netloom.Interop.Libc;
