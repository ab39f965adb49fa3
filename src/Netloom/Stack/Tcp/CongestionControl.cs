using Netloom.Time;

namespace Netloom.Stack;

/// <summary>Which congestion control a connection uses.</summary>
public enum CongestionAlgorithm : byte { Cubic, NewReno }

/// <summary>
/// A congestion controller (RFC 5681's cwnd and ssthresh, in bytes). The connection tells it
/// about acknowledgments outside recovery, the start and end of a loss recovery, and
/// retransmission timeouts; recovery itself (what to retransmit) belongs to the connection.
/// </summary>
internal abstract class CongestionControl
{
    protected CongestionControl(int mss, int initialWindowSegments)
    {
        Mss = mss;
        Cwnd = initialWindowSegments * mss; // RFC 6928: IW10
        Ssthresh = int.MaxValue;
    }

    public abstract string Name { get; }
    public int Mss { get; internal set; }
    public int Cwnd { get; protected set; }
    public int Ssthresh { get; protected set; }
    public bool InSlowStart => Cwnd < Ssthresh;

    /// <summary>New data was acknowledged outside recovery; <paramref name="flight"/> is what was outstanding before.</summary>
    public abstract void OnAck(int ackedBytes, int flight, Instant now, Duration minRtt);

    /// <summary>Fast retransmit: loss detected by duplicate ACKs or SACK (RFC 5681 §3.2 step 2).</summary>
    public abstract void OnLoss(int flight, Instant now);

    /// <summary>Recovery ended with everything outstanding at its start acknowledged (RFC 6582 §3.2 step 3).</summary>
    public virtual void OnRecoveryEnd(int flight) => Cwnd = Math.Max(Math.Min(Ssthresh, flight + Mss), Mss);

    /// <summary>A retransmission timeout: ssthresh from the flight, cwnd to one segment (RFC 5681 §3.1, eq. 4).</summary>
    public virtual void OnTimeout(int flight, Instant now)
    {
        Ssthresh = Math.Max(flight / 2, 2 * Mss);
        Cwnd = Mss;
    }

    /// <summary>No window beyond this: far above any buffer a connection can have.</summary>
    protected const int MaxWindow = 1 << 30;

    /// <summary>Slow start with appropriate byte counting (RFC 3465, L = 2 segments).</summary>
    protected void SlowStart(int ackedBytes) => Cwnd = Math.Min(MaxWindow, Cwnd + Math.Min(ackedBytes, 2 * Mss));

    public static CongestionControl Create(CongestionAlgorithm algorithm, int mss, int initialWindow) => algorithm switch
    {
        CongestionAlgorithm.NewReno => new NewRenoControl(mss, initialWindow),
        _ => new CubicControl(mss, initialWindow),
    };
}

/// <summary>Reno's AIMD (RFC 5681): one segment per round trip, halve on loss.</summary>
internal sealed class NewRenoControl(int mss, int initialWindow) : CongestionControl(mss, initialWindow)
{
    private long _acked; // bytes acknowledged since cwnd last grew in congestion avoidance

    public override string Name => "newreno";

    public override void OnAck(int ackedBytes, int flight, Instant now, Duration minRtt)
    {
        if (InSlowStart) { SlowStart(ackedBytes); return; }
        // RFC 5681 §3.1: cwnd += SMSS once per cwnd of acknowledged data (byte counting).
        _acked += ackedBytes;
        if (_acked >= Cwnd) { _acked -= Cwnd; Cwnd = Math.Min(MaxWindow, Cwnd + Mss); }
    }

    public override void OnLoss(int flight, Instant now)
    {
        Ssthresh = Math.Max(flight / 2, 2 * Mss); // RFC 5681 eq. 4
        Cwnd = Ssthresh;
        _acked = 0;
    }
}

/// <summary>
/// CUBIC (RFC 9438): after a loss the window follows W(t) = C(t − K)³ + Wmax, concave up to the
/// old maximum and convex beyond it, never below what Reno would reach (the Reno-friendly
/// region, §4.3); β = 0.7 and fast convergence (§4.7).
/// </summary>
internal sealed class CubicControl(int mss, int initialWindow) : CongestionControl(mss, initialWindow)
{
    private const double C = 0.4, Beta = 0.7;
    private static readonly double AlphaCubic = 3 * (1 - Beta) / (1 + Beta); // §4.3
    private double _wMax, _wLastMax, _k, _wEst; // in segments
    private long _epochStart = -1;              // nanoseconds; -1 before the first congestion avoidance ack

    public override string Name => "cubic";

    public override void OnAck(int ackedBytes, int flight, Instant now, Duration minRtt)
    {
        if (InSlowStart) { SlowStart(ackedBytes); return; }
        double cwnd = (double)Cwnd / Mss;
        if (_epochStart < 0)
        {
            _epochStart = now.Nanoseconds;
            if (_wMax < cwnd) { _wMax = cwnd; _k = 0; }
            else _k = Math.Cbrt((_wMax - cwnd) / C);   // §4.2 eq. 2, with cwnd_epoch = cwnd
            _wEst = cwnd;
        }
        double rtt = minRtt.Nanoseconds == long.MaxValue ? 0.1 : minRtt.TotalSeconds;
        double t = (now.Nanoseconds - _epochStart) / 1e9;
        double target = C * Math.Pow(t + rtt - _k, 3) + _wMax;         // W_cubic(t + RTT), §4.4
        target = Math.Clamp(target, cwnd, 1.5 * cwnd);
        _wEst += AlphaCubic * ackedBytes / Mss / cwnd;                  // §4.3 eq. 4
        double next;
        if (_wEst > target) next = cwnd + (_wEst - cwnd) / cwnd * ackedBytes / Mss; // Reno-friendly region
        else next = cwnd + (target - cwnd) / cwnd * ackedBytes / Mss;   // concave or convex region, §4.4-4.5
        Cwnd = Math.Max(Cwnd, (int)Math.Min(next * Mss, MaxWindow));
    }

    public override void OnLoss(int flight, Instant now)
    {
        double cwnd = (double)Cwnd / Mss;
        _epochStart = -1;
        // Fast convergence (§4.7): a flow whose maximum shrinks releases bandwidth sooner.
        _wLastMax = _wMax;
        _wMax = cwnd < _wLastMax ? cwnd * (1 + Beta) / 2 : cwnd;
        Ssthresh = Math.Max((int)(cwnd * Beta * Mss), 2 * Mss);            // §4.6
        Cwnd = Ssthresh;
    }

    public override void OnTimeout(int flight, Instant now)
    {
        OnLoss(flight, now);
        _epochStart = -1;
        Cwnd = Mss;
    }
}
