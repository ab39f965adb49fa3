using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;

namespace Netloom.AspNetCore;

internal static class Pools
{
    /// <summary>Kestrel's own pool (pinned 4 KiB blocks, the one its sockets transport uses) when the host offers its factory, else the shared pool.</summary>
    public static MemoryPool<byte> FromServices(IServiceProvider services, string owner) =>
        services.GetService<IMemoryPoolFactory<byte>>()?.Create(new MemoryPoolOptions { Owner = owner }) ?? MemoryPool<byte>.Shared;
}
