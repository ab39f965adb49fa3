using Netloom.Stack;

namespace Netloom.Emulation.Apps;

/// <summary>What bulk senders and servers send: no allocation, and checkable by position.</summary>
internal static class Payload
{
    /// <summary>
    /// Sends up to <paramref name="remaining"/> bytes of the pattern, continuing at
    /// <paramref name="position"/> (byte N of a stream is always 'a' + N mod 26, however the sends
    /// are cut); returns how many went.
    /// </summary>
    public static long Send(TcpSocket s, long remaining, long position = 0)
    {
        long sent = 0;
        while (remaining > 0)
        {
            int start = (int)((position + sent) % 26);
            int n = s.Send(Pattern.AsSpan(start, (int)Math.Min(remaining, Pattern.Length - start)));
            if (n == 0) break;
            sent += n;
            remaining -= n;
        }
        return sent;
    }

    /// <summary>The bytes bulk senders and servers send: "abc...z" repeated, 64 KiB and a bit (a whole number of alphabets).</summary>
    private static readonly byte[] Pattern = MakePattern();

    private static byte[] MakePattern()
    {
        var b = new byte[26 * 2521];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)('a' + i % 26);
        return b;
    }
}
