using Google.Protobuf;
using Grpc.Core;

namespace Netloom.AspNetCore.TestApp;

internal sealed class EchoService : Echo.EchoBase
{
    public override Task<Note> Say(Note request, ServerCallContext context) =>
        Task.FromResult(new Note { Text = "echo: " + request.Text, Payload = request.Payload });

    public override async Task Count(CountRequest request, IServerStreamWriter<Note> responseStream, ServerCallContext context)
    {
        var payload = new byte[Math.Clamp(request.Size, 0, 1 << 20)];
        for (int i = 0; i < Math.Clamp(request.Count, 0, 100_000); i++)
        {
            payload.AsSpan().Fill((byte)i);
            await responseStream.WriteAsync(new Note { Text = i.ToString(), Payload = ByteString.CopyFrom(payload) });
        }
    }
}
