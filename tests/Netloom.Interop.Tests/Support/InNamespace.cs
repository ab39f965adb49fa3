using Netloom.Interop;

namespace Netloom.Interop.Tests.Support;

/// <summary>Runs code on a thread that has entered a network namespace (setns), so what it opens lives there.</summary>
internal static class InNamespace
{
    public static T Run<T>(string ns, Func<T> body)
    {
        T? result = default;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                int fd = Libc.Open($"/var/run/netns/{ns}", 0x80000 /* O_RDONLY|O_CLOEXEC */);
                if (fd < 0) throw new IOException($"cannot open namespace {ns}: errno {Libc.Errno}");
                try
                {
                    if (Libc.SetNs(fd, Libc.CLONE_NEWNET) != 0) throw new IOException($"setns {ns}: errno {Libc.Errno}");
                }
                finally { Libc.Close(fd); }
                result = body();
            }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join();
        if (error is not null) throw new InvalidOperationException($"in namespace {ns}: {error.Message}", error);
        return result!;
    }
}
