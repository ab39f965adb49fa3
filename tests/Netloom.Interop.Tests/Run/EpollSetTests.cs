using Netloom.Run;
using Netloom.Run.Native;

namespace Netloom.Interop.Tests.Run;

/// <summary>
/// The engines' epoll set on its own: level, edge and one-shot reporting from its ready list,
/// turn-taking under a small maxevents, removal, and that a wait looks only at members that
/// moved (the engines' process tests run it under real programs: nginx, redis, node, python).
/// </summary>
public unsafe class EpollSetTests
{
    private sealed class Member : IEpollMember
    {
        public short Bits;
        public int Looks;
        public EpollWatchers Epoll { get; } = new();
        public short Readiness() { Looks++; return Bits; }
        public void Become(short bits) { Bits = bits; Epoll.Moved(); }
    }

    private const uint In = (uint)Abi.POLLIN, Out = (uint)Abi.POLLOUT;

    private static List<ulong> Wait(EpollSet set, int max = 64)
    {
        var events = stackalloc EpollEvent[max];
        int n = set.Collect(events, max);
        var data = new List<ulong>();
        for (int i = 0; i < n; i++) data.Add(events[i].Data);
        return data;
    }

    [Fact]
    public void Level_triggered_members_are_reported_while_ready_and_again_once_they_move()
    {
        var set = new EpollSet(100);
        var a = new Member { Bits = Abi.POLLIN };
        Assert.Equal(0, set.Control(Abi.EPOLL_CTL_ADD, 5, a, In, 5));
        Assert.Equal([5ul], Wait(set));
        Assert.Equal([5ul], Wait(set)); // still ready: reported again
        a.Bits = 0;                      // read empty (a change the program made: no event)
        Assert.Empty(Wait(set));
        Assert.Empty(Wait(set));
        a.Become(Abi.POLLIN);            // data arrived
        Assert.Equal([5ul], Wait(set));
        a.Become(Abi.POLLOUT);           // an event it does not ask for
        Assert.Empty(Wait(set));
    }

    [Fact]
    public void A_small_maxevents_serves_every_ready_member_in_turn()
    {
        var set = new EpollSet(100);
        var members = new[] { new Member { Bits = Abi.POLLIN }, new Member { Bits = Abi.POLLIN }, new Member { Bits = Abi.POLLIN } };
        for (int i = 0; i < 3; i++) set.Control(Abi.EPOLL_CTL_ADD, 10 + i, members[i], In, (ulong)(10 + i));
        var seen = new List<ulong>();
        for (int i = 0; i < 6; i++) seen.AddRange(Wait(set, 1));
        Assert.Equal([10ul, 11, 12, 10, 11, 12], seen);
        Assert.Equal([10ul, 11], Wait(set, 2));
        Assert.Equal([12ul, 10], Wait(set, 2));
    }

    [Fact]
    public void Edge_triggered_members_are_reported_once_per_move()
    {
        var set = new EpollSet(100);
        var a = new Member { Bits = Abi.POLLIN | Abi.POLLOUT };
        set.Control(Abi.EPOLL_CTL_ADD, 7, a, In | Out | (uint)Abi.EPOLLET, 7);
        Assert.Equal([7ul], Wait(set));
        Assert.Empty(Wait(set)); // ready, but it has not moved
        a.Become(Abi.POLLIN | Abi.POLLOUT);
        Assert.Equal([7ul], Wait(set));
        a.Become(0);             // moved, but nothing is ready by the time the wait looks
        Assert.Empty(Wait(set));
        a.Become(Abi.POLLOUT);
        Assert.Equal([7ul], Wait(set));
    }

    [Fact]
    public void A_one_shot_member_is_reported_once_until_modified()
    {
        var set = new EpollSet(100);
        var a = new Member { Bits = Abi.POLLIN };
        set.Control(Abi.EPOLL_CTL_ADD, 8, a, In | (uint)Abi.EPOLLONESHOT, 8);
        Assert.Equal([8ul], Wait(set));
        a.Become(Abi.POLLIN);
        Assert.Empty(Wait(set));
        Assert.Equal(0, set.Control(Abi.EPOLL_CTL_MOD, 8, a, In | (uint)Abi.EPOLLONESHOT, 80));
        Assert.Equal([80ul], Wait(set));
        Assert.Empty(Wait(set));
    }

    [Fact]
    public void Removed_and_closed_members_are_never_reported_and_let_go_of_the_set()
    {
        var set = new EpollSet(100);
        var a = new Member { Bits = Abi.POLLIN };
        var b = new Member { Bits = Abi.POLLIN };
        set.Control(Abi.EPOLL_CTL_ADD, 1, a, In, 1);
        set.Control(Abi.EPOLL_CTL_ADD, 2, b, In, 2);
        Assert.Equal(-Errno.EEXIST, set.Control(Abi.EPOLL_CTL_ADD, 1, a, In, 1));
        Assert.Equal(0, set.Control(Abi.EPOLL_CTL_DEL, 1, a, 0, 0));
        Assert.Equal(-Errno.ENOENT, set.Control(Abi.EPOLL_CTL_DEL, 1, a, 0, 0));
        Assert.Equal(-Errno.ENOENT, set.Control(Abi.EPOLL_CTL_MOD, 1, a, In, 1));
        b.Epoll.Closed(2);
        a.Become(Abi.POLLIN);
        b.Become(Abi.POLLIN);
        Assert.Empty(Wait(set));
        Assert.Empty(a.Epoll.Entries);
        Assert.Empty(b.Epoll.Entries);
        Assert.Equal(0, set.Count);

        // Two sets watch one member; closing one set leaves the other.
        var other = new EpollSet(101);
        set.Control(Abi.EPOLL_CTL_ADD, 1, a, In, 1);
        other.Control(Abi.EPOLL_CTL_ADD, 1, a, In, 11);
        set.Clear();
        Assert.Single(a.Epoll.Entries);
        Assert.Equal([11ul], Wait(other));
    }

    [Fact]
    public void A_wait_looks_only_at_members_that_moved()
    {
        var set = new EpollSet(100);
        var members = new Member[1000];
        for (int i = 0; i < members.Length; i++)
        {
            members[i] = new Member();
            set.Control(Abi.EPOLL_CTL_ADD, 1000 + i, members[i], In, (ulong)i);
        }
        Assert.Empty(Wait(set)); // the first wait looks at each new member once
        foreach (var m in members) m.Looks = 0;
        members[123].Become(Abi.POLLIN);
        members[777].Become(Abi.POLLIN);
        Assert.Equal([123ul, 777], Wait(set));
        Assert.Equal(2, members.Sum(m => m.Looks));
    }

    [Fact]
    public void Adding_and_deleting_without_ever_waiting_keeps_the_list_bounded()
    {
        var set = new EpollSet(100);
        var keep = new Member { Bits = Abi.POLLIN };
        set.Control(Abi.EPOLL_CTL_ADD, 3, keep, In, 3);
        var a = new Member { Bits = Abi.POLLIN };
        for (int i = 0; i < 100_000; i++)
        {
            set.Control(Abi.EPOLL_CTL_ADD, 4, a, In, 4);
            set.Control(Abi.EPOLL_CTL_DEL, 4, a, 0, 0);
        }
        Assert.InRange(set.Listed, 1, 2 * set.Count + 65);
        Assert.Equal([3ul], Wait(set));
    }
}
