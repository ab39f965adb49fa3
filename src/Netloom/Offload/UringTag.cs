namespace Netloom.Offload;

/// <summary>
/// A loop's user_data: the operation's kind (top byte), the connection's slot (next 24 bits) and
/// its generation (low 32), so completions for a slot that a newer connection reuses are recognised and ignored.
/// </summary>
internal static class UringTag
{
    public const byte Accept = 1, Recv = 2, Send = 3, Tick = 4, Close = 5, Shutdown = 6, Wake = 7;

    public static ulong Make(byte kind, int slot, uint generation) => (ulong)kind << 56 | (ulong)(uint)slot << 32 | generation;
    public static byte Kind(ulong tag) => (byte)(tag >> 56);
    public static int Slot(ulong tag) => (int)(tag >> 32 & 0xFFFFFF);
    public static uint Generation(ulong tag) => (uint)tag;
}
