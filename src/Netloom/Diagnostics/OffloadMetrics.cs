namespace Netloom.Diagnostics;

/// <summary>What the offload engine's instruments read from one server (a copy of its counters).</summary>
/// <param name="Accepted">Connections accepted.</param>
/// <param name="Requests">Receive completions handed to the connection handler.</param>
/// <param name="Enters">io_uring_enter system calls made by the loops.</param>
/// <param name="ZeroCopySends">Sends issued with IORING_OP_SEND_ZC.</param>
/// <param name="BundleSends">Bundle sends issued.</param>
/// <param name="BundleBatches">Batches those bundles carried.</param>
/// <param name="BundleFaults">Connections closed because a bundle's count did not match its batches.</param>
internal readonly record struct OffloadReading(long Accepted, long Requests, long Enters, long ZeroCopySends, long BundleSends, long BundleBatches, long BundleFaults);

/// <summary>
/// The io_uring engine's instruments on the "Netloom" meter, tagged <c>netloom.offload.server</c>
/// (the server's endpoint). The engine registers each server with a static function that copies
/// its counters into an <see cref="OffloadReading"/>; the meter holds the server weakly.
/// </summary>
internal static class OffloadMetrics
{
    public const string ServerTag = "netloom.offload.server";
    internal static readonly MetricSources<Source> Sources = new();

    /// <summary>A registered server and how to read it.</summary>
    internal sealed class Source(object server, Func<object, OffloadReading> read)
    {
        private readonly WeakReference _server = new(server);
        // Several instruments read one server per collection; the reading is taken once per Read call.
        public OffloadReading Read() => _server.Target is { } s ? read(s) : default;
    }

    static OffloadMetrics()
    {
        var s = Sources;
        s.Counter("netloom.offload.connections.accepted", "{connection}", "Connections the io_uring engine accepted", static x => x.Read().Accepted);
        s.Counter("netloom.offload.requests", "{completion}", "Receive completions handed to the connection handler", static x => x.Read().Requests);
        s.Counter("netloom.offload.enters", "{call}", "io_uring_enter system calls", static x => x.Read().Enters);
        s.Counter("netloom.offload.sends.zero_copy", "{send}", "Sends issued with SEND_ZC", static x => x.Read().ZeroCopySends);
        s.Counter("netloom.offload.sends.bundles", "{send}", "Bundle sends issued", static x => x.Read().BundleSends);
        s.Counter("netloom.offload.bundles.batches", "{batch}", "Batches carried by bundle sends", static x => x.Read().BundleBatches);
        s.Counter("netloom.offload.bundles.faults", "{connection}", "Connections closed for a bundle whose count did not match its batches", static x => x.Read().BundleFaults);
    }

    /// <summary>
    /// Publishes <paramref name="server"/>'s counters until the result is disposed. <paramref name="read"/>
    /// should be static (no captured state) so the registration keeps nothing alive, for example
    /// <c>OffloadMetrics.Register(this, LocalEndPoint.ToString(), static s => ((UringServer)s).Reading())</c>.
    /// </summary>
    public static IDisposable Register(object server, string name, Func<object, OffloadReading> read)
    {
        var source = new Source(server, read);
        // The registration itself holds the Source weakly; the server keeps it alive through the returned handle.
        return new Handle(Sources.Add(source, new KeyValuePair<string, object?>(ServerTag, name)), source);
    }

    private sealed class Handle(IDisposable registration, Source source) : IDisposable
    {
        private Source? _source = source; // keeps the Source alive as long as the server holds this handle
        public void Dispose()
        {
            registration.Dispose();
            _source = null;
        }
    }
}
