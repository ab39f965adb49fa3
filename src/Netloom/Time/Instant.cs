namespace Netloom.Time;

/// <summary>
/// A point in time as nanoseconds since the Unix epoch. The library never reads a clock:
/// hosts and the emulator turn a real or virtual clock into an <see cref="Instant"/>.
/// </summary>
public readonly record struct Instant(long Nanoseconds) : IComparable<Instant>
{
    public static readonly Instant Zero = new(0);

    public static Instant FromMicroseconds(long us) => new(us * 1000);
    public static Instant FromSeconds(long seconds, long nanoseconds = 0) => new(seconds * 1_000_000_000 + nanoseconds);

    public long Microseconds => Nanoseconds / 1000;
    public long TotalSeconds => Nanoseconds / 1_000_000_000;
    public long SubsecondNanoseconds => Nanoseconds % 1_000_000_000;

    public static Instant operator +(Instant a, Duration d) => new(a.Nanoseconds + d.Nanoseconds);
    public static Instant operator -(Instant a, Duration d) => new(a.Nanoseconds - d.Nanoseconds);
    public static Duration operator -(Instant a, Instant b) => new(a.Nanoseconds - b.Nanoseconds);
    public static bool operator <(Instant a, Instant b) => a.Nanoseconds < b.Nanoseconds;
    public static bool operator >(Instant a, Instant b) => a.Nanoseconds > b.Nanoseconds;
    public static bool operator <=(Instant a, Instant b) => a.Nanoseconds <= b.Nanoseconds;
    public static bool operator >=(Instant a, Instant b) => a.Nanoseconds >= b.Nanoseconds;

    public int CompareTo(Instant other) => Nanoseconds.CompareTo(other.Nanoseconds);

    public override string ToString() => $"{TotalSeconds}.{SubsecondNanoseconds:D9}";
}

/// <summary>A span of time in nanoseconds.</summary>
public readonly record struct Duration(long Nanoseconds) : IComparable<Duration>
{
    public static readonly Duration Zero = new(0);

    public static Duration FromNanoseconds(long ns) => new(ns);
    public static Duration FromMicroseconds(long us) => new(us * 1000);
    public static Duration FromMilliseconds(long ms) => new(ms * 1_000_000);
    public static Duration FromSeconds(long s) => new(s * 1_000_000_000);

    public long Microseconds => Nanoseconds / 1000;
    public long Milliseconds => Nanoseconds / 1_000_000;
    public double TotalSeconds => Nanoseconds / 1e9;

    public static Duration operator +(Duration a, Duration b) => new(a.Nanoseconds + b.Nanoseconds);
    public static Duration operator -(Duration a, Duration b) => new(a.Nanoseconds - b.Nanoseconds);
    public static Duration operator *(Duration a, long k) => new(a.Nanoseconds * k);
    public static bool operator <(Duration a, Duration b) => a.Nanoseconds < b.Nanoseconds;
    public static bool operator >(Duration a, Duration b) => a.Nanoseconds > b.Nanoseconds;
    public static bool operator <=(Duration a, Duration b) => a.Nanoseconds <= b.Nanoseconds;
    public static bool operator >=(Duration a, Duration b) => a.Nanoseconds >= b.Nanoseconds;

    public int CompareTo(Duration other) => Nanoseconds.CompareTo(other.Nanoseconds);

    public override string ToString() => Nanoseconds switch
    {
        < 10_000 => $"{Nanoseconds} ns",
        < 10_000_000 => $"{Nanoseconds / 1e3:0.###} us",
        < 10_000_000_000 => $"{Nanoseconds / 1e6:0.###} ms",
        _ => $"{Nanoseconds / 1e9:0.###} s",
    };
}
