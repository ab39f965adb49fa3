namespace Netloom.Run;

/// <summary>
/// An engine's table from descriptor numbers to its sockets, kept in step with the interposer's
/// "is this fd ours?" byte table: naming a descriptor marks it there, forgetting one unmarks it
/// first (before libc can hand the number out again). Call under the engine's lock.
/// </summary>
internal sealed unsafe class DescriptorTable<T> where T : class
{
    private T?[] _fds = new T?[256];

    /// <summary>One past the highest descriptor the table has room for (to walk it).</summary>
    public int Length => _fds.Length;

    public T? this[int fd] => (uint)fd < (uint)_fds.Length ? _fds[fd] : null;

    /// <summary>Names <paramref name="socket"/> by <paramref name="fd"/> and marks it ours; false past the interposer's table.</summary>
    public bool Name(int fd, T socket)
    {
        if ((uint)fd >= Engine.MaxFd) return false;
        if (fd >= _fds.Length) Array.Resize(ref _fds, Math.Min(Engine.MaxFd, Math.Max(fd + 1, _fds.Length * 2)));
        _fds[fd] = socket;
        Engine.Host->Mark(fd, 1);
        return true;
    }

    /// <summary>Unmarks and forgets <paramref name="fd"/>; the socket it named, or null.</summary>
    public T? Forget(int fd)
    {
        if (this[fd] is not { } s) return null;
        Engine.Host->Mark(fd, 0);
        _fds[fd] = null;
        return s;
    }

    /// <summary>Some descriptor that names <paramref name="socket"/>, or -1.</summary>
    public int NameOf(T socket)
    {
        for (int fd = 0; fd < _fds.Length; fd++)
            if (_fds[fd] == socket) return fd;
        return -1;
    }

    /// <summary>Makes every descriptor that names <paramref name="old"/> name <paramref name="now"/>; how many did.</summary>
    public int Rename(T old, T now)
    {
        int n = 0;
        for (int fd = 0; fd < _fds.Length; fd++)
            if (_fds[fd] == old) { _fds[fd] = now; n++; }
        return n;
    }
}
