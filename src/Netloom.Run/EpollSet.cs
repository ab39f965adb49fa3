using Netloom.Run.Native;

namespace Netloom.Run;

/// <summary>A member of an engine's epoll sets: its poll bits now, and what the sets know of it.</summary>
internal interface IEpollMember
{
    short Readiness();
    EpollWatchers Epoll { get; }
}

/// <summary>
/// The epoll entries watching one member (none or one, as a rule), and a count bumped by every
/// event: edge-triggered epoll reports a member again only after it moved.
/// </summary>
internal sealed class EpollWatchers
{
    public uint Seq { get; private set; }
    public readonly List<EpollSet.Entry> Entries = new();

    /// <summary>An event that may have made the member ready: every entry watching it joins its set's ready list.</summary>
    public void Moved()
    {
        Seq++;
        foreach (var e in Entries) e.Set.Enlist(e);
    }

    /// <summary>Whether an entry of <paramref name="set"/> watches the member.</summary>
    public bool Watches(EpollSet set)
    {
        foreach (var e in Entries) if (e.Set == set) return true;
        return false;
    }

    /// <summary><paramref name="fd"/>, one of the member's descriptors, was closed: its registrations go, in every set.</summary>
    public void Closed(int fd)
    {
        for (int i = Entries.Count - 1; i >= 0; i--)
            if (Entries[i].Fd == fd) Entries[i].Set.Drop(Entries[i]);
    }
}

/// <summary>
/// The Netloom members of one epoll set (its kernel members stay in the kernel's set), kept as the
/// kernel keeps them: a table by descriptor, and a ready list of the entries that may be ready,
/// so a wait costs what is ready, not what is registered. An entry joins the list when it is
/// added or modified, and when its member moves (<see cref="EpollWatchers.Moved"/>, which every
/// event that can make a member ready must call); a wait looks only at the list.
/// Level-triggered entries stay on it while ready, at its tail once reported (so a wait with a
/// small maxevents serves every ready member in turn); edge-triggered ones leave it once
/// reported, until they move; EPOLLONESHOT ones are disarmed until modified.
/// </summary>
internal sealed class EpollSet(int epfd)
{
    /// <summary>One registration: a descriptor of a member, the events asked for, and the program's data.</summary>
    public sealed class Entry(EpollSet set, int fd, IEpollMember member)
    {
        public readonly EpollSet Set = set;
        public readonly int Fd = fd;
        public readonly IEpollMember Member = member;
        public uint Events;
        public ulong Data;
        public uint ReportedSeq;
        public bool Reported, Disarmed, OnList, Removed;
    }

    public readonly int Fd = epfd;
    private readonly Dictionary<int, Entry> _entries = new();

    /// <summary>
    /// The kernel members of <paramref name="epfd"/> that are ready, without waiting. The
    /// interposer's own wake-up event (<see cref="Abi.WakeMark"/>), which a set holds while
    /// threads that began waiting in the kernel are being woken, is dropped (the program never
    /// sees it) and handed back to the interposer for the next sleeper.
    /// </summary>
    public static unsafe int AskKernel(int epfd, EpollEvent* events, int max)
    {
        int k = Sys.EpollWait(epfd, events, max, 0);
        if (k <= 0) return k;
        int kept = 0;
        bool woken = false;
        for (int i = 0; i < k; i++)
        {
            if (events[i].Data != Abi.WakeMark) events[kept++] = events[i];
            else woken = true;
        }
        if (woken) Engine.Host->WakeConsumed(epfd);
        return kept;
    }
    private readonly Queue<Entry> _ready = new();

    public int Count => _entries.Count;
    /// <summary>Entries on the ready list now (removed ones included until a wait reaches them).</summary>
    internal int Listed => _ready.Count;

    internal void Enlist(Entry e)
    {
        if (e.OnList || e.Removed) return;
        e.OnList = true;
        _ready.Enqueue(e);
    }

    public long Control(int op, int fd, IEpollMember s, uint events, ulong data)
    {
        _entries.TryGetValue(fd, out var e);
        switch (op)
        {
            case Abi.EPOLL_CTL_ADD:
                if (e is not null) return -Errno.EEXIST;
                e = new Entry(this, fd, s) { Events = events, Data = data };
                _entries[fd] = e;
                s.Epoll.Entries.Add(e);
                Enlist(e);
                return 0;
            case Abi.EPOLL_CTL_MOD:
                if (e is null) return -Errno.ENOENT;
                e.Events = events;
                e.Data = data;
                e.Reported = e.Disarmed = false;
                e.ReportedSeq = 0;
                Enlist(e);
                return 0;
            case Abi.EPOLL_CTL_DEL:
                if (e is null) return -Errno.ENOENT;
                Drop(e);
                return 0;
        }
        return -Errno.EINVAL;
    }

    /// <summary>The epoll descriptor was closed: its members stop telling it.</summary>
    public void Clear()
    {
        foreach (var e in _entries.Values) { e.Member.Epoll.Entries.Remove(e); e.Removed = true; }
        _entries.Clear();
        _ready.Clear();
    }

    internal void Drop(Entry e)
    {
        _entries.Remove(e.Fd);
        e.Member.Epoll.Entries.Remove(e);
        e.Removed = true; // leaves the ready list when a wait reaches it
        // A program that adds and deletes without ever waiting must not grow the list without bound.
        if (e.OnList && _ready.Count > 2 * _entries.Count + 64)
        {
            for (int i = _ready.Count; i > 0; i--)
            {
                var r = _ready.Dequeue();
                if (r.Removed) r.OnList = false;
                else _ready.Enqueue(r);
            }
        }
    }

    /// <summary>Writes the ready members into events (up to max); call with the stack lock held.</summary>
    public unsafe int Collect(EpollEvent* events, int max)
    {
        int n = 0;
        // Each entry on the list now is looked at once: the level-triggered ones reported go back
        // to the tail, behind the rest, for the next wait.
        for (int look = _ready.Count; look > 0 && n < max; look--)
        {
            var e = _ready.Dequeue();
            e.OnList = false;
            if (e.Removed || e.Disarmed) continue;
            uint ready = (uint)(ushort)e.Member.Readiness() & (e.Events | (uint)(Abi.POLLERR | Abi.POLLHUP));
            if (ready == 0) continue; // off the list until it moves
            bool edge = (e.Events & Abi.EPOLLET) != 0;
            if (edge && e.Reported && e.ReportedSeq == e.Member.Epoll.Seq) continue;
            e.Reported = true;
            e.ReportedSeq = e.Member.Epoll.Seq;
            if ((e.Events & Abi.EPOLLONESHOT) != 0) e.Disarmed = true;
            else if (!edge) Enlist(e);
            events[n].Events = ready;
            events[n].Data = e.Data;
            n++;
        }
        return n;
    }
}
