using System.Text.Json;

namespace Netloom.Cli.Emulate;

/// <summary>
/// The event stream's fan-out (SSE and WebSocket): each subscriber has its own bounded queue of serialized events (a
/// slow one loses its oldest). Publishing costs nothing while nobody listens.
/// </summary>
internal sealed class EventHub
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
    private readonly List<System.Threading.Channels.Channel<(string Type, string Json)>> _subs = [];
    private volatile int _count;
    private bool _completed;

    public static JsonSerializerOptions JsonOptions => Json;
    public bool HasSubscribers => _count > 0;

    public System.Threading.Channels.ChannelReader<(string Type, string Json)> Subscribe(out Action unsubscribe)
    {
        var ch = System.Threading.Channels.Channel.CreateBounded<(string Type, string Json)>(new System.Threading.Channels.BoundedChannelOptions(256) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropOldest });
        lock (_subs)
        {
            if (_completed) ch.Writer.TryComplete();
            else { _subs.Add(ch); _count = _subs.Count; }
        }
        unsubscribe = () => { lock (_subs) { _subs.Remove(ch); _count = _subs.Count; } ch.Writer.TryComplete(); };
        return ch.Reader;
    }

    public void Publish(string type, object data)
    {
        if (_count == 0) return;
        var e = (type, JsonSerializer.Serialize(data, Json));
        lock (_subs) foreach (var s in _subs) s.Writer.TryWrite(e);
    }

    public void Complete()
    {
        lock (_subs)
        {
            _completed = true;
            foreach (var s in _subs) s.Writer.TryComplete();
            _subs.Clear();
            _count = 0;
        }
    }
}
