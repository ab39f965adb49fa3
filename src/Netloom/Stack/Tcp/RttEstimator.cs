using Netloom.Time;

namespace Netloom.Stack;

/// <summary>
/// The retransmission timeout of RFC 6298: SRTT and RTTVAR from samples (α = 1/8, β = 1/4),
/// RTO = SRTT + max(G, 4·RTTVAR) within [min, max], doubled on each timeout (§5.5).
/// </summary>
internal sealed class RttEstimator
{
    private readonly long _min, _max;
    private long _srtt, _rttvar, _rto;
    private int _backoff;

    public RttEstimator(Duration initial, Duration min, Duration max)
    {
        _min = min.Nanoseconds;
        _max = max.Nanoseconds;
        _rto = initial.Nanoseconds;
    }

    public bool HasSample => _srtt != 0;
    public Duration Smoothed => new(_srtt);
    public Duration Variance => new(_rttvar);
    public int Backoff => _backoff;
    public Duration MinRtt { get; private set; } = new(long.MaxValue);

    /// <summary>The timeout to arm now, with the exponential backoff applied.</summary>
    public Duration Rto => new(Math.Min(_max, _rto << Math.Min(_backoff, 20)));

    public void Sample(Duration rtt)
    {
        long r = Math.Max(rtt.Nanoseconds, 1000); // below the clock's resolution counts as 1 µs
        if (r < MinRtt.Nanoseconds) MinRtt = new(r);
        if (_srtt == 0) { _srtt = r; _rttvar = r / 2; }           // §2.2
        else
        {
            _rttvar = (3 * _rttvar + Math.Abs(_srtt - r)) / 4;      // §2.3
            _srtt = (7 * _srtt + r) / 8;
        }
        _rto = Math.Clamp(_srtt + Math.Max(TimerWheel.Tick.Nanoseconds, 4 * _rttvar), _min, _max);
        _backoff = 0; // a fresh sample ends the backoff (§5, Karn: only on unambiguous samples)
    }

    public void OnTimeout() => _backoff++;
    public void ResetBackoff() => _backoff = 0;
}
