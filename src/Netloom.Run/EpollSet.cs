using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>A member of an engine's epoll set: its poll bits now, and a count bumped by every event.</summary>
internal interface IEpollMember
{
    short Readiness();
    /// <summary>Bumped by every event: edge-triggered epoll reports a member again only after it moved.</summary>
    uint Seq { get; }
}

/// <summary>
/// The Netloom members of one epoll set (its kernel members stay in the kernel's set). Level
/// triggered members are reported while ready; edge-triggered ones when they moved since the
/// last report (<see cref="IEpollMember.Seq"/>); EPOLLONESHOT members until reported once.
/// </summary>
internal sealed class EpollSet(int epfd)
{
    private struct Member
    {
        public int Fd;
        public IEpollMember Socket;
        public uint Events;
        public ulong Data;
        public uint ReportedSeq;
        public bool Reported, Disarmed;
    }

    public readonly int Fd = epfd;
    private readonly List<Member> _members = new();

    public int Count => _members.Count;

    private int IndexOf(int fd)
    {
        for (int i = 0; i < _members.Count; i++) if (_members[i].Fd == fd) return i;
        return -1;
    }

    public long Control(int op, int fd, IEpollMember s, uint events, ulong data)
    {
        int i = IndexOf(fd);
        switch (op)
        {
            case Abi.EPOLL_CTL_ADD:
                if (i >= 0) return -Errno.EEXIST;
                _members.Add(new Member { Fd = fd, Socket = s, Events = events, Data = data });
                return 0;
            case Abi.EPOLL_CTL_MOD:
                if (i < 0) return -Errno.ENOENT;
                _members[i] = new Member { Fd = fd, Socket = s, Events = events, Data = data };
                return 0;
            case Abi.EPOLL_CTL_DEL:
                if (i < 0) return -Errno.ENOENT;
                _members.RemoveAt(i);
                return 0;
        }
        return -Errno.EINVAL;
    }

    public void Remove(int fd)
    {
        int i = IndexOf(fd);
        if (i >= 0) _members.RemoveAt(i);
    }

    /// <summary>Writes the ready members into events (up to max); call with the stack lock held.</summary>
    public unsafe int Collect(EpollEvent* events, int max)
    {
        int n = 0;
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_members);
        for (int i = 0; i < span.Length && n < max; i++)
        {
            ref var m = ref span[i];
            if (m.Disarmed) continue;
            uint ready = (uint)(ushort)m.Socket.Readiness() & (m.Events | (uint)(Abi.POLLERR | Abi.POLLHUP));
            if (ready == 0) continue;
            if ((m.Events & Abi.EPOLLET) != 0 && m.Reported && m.ReportedSeq == m.Socket.Seq) continue;
            m.Reported = true;
            m.ReportedSeq = m.Socket.Seq;
            if ((m.Events & Abi.EPOLLONESHOT) != 0) m.Disarmed = true;
            events[n].Events = ready;
            events[n].Data = m.Data;
            n++;
        }
        return n;
    }
}
