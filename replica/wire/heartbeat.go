package wire

import (
	"strings"
	"time"
)

// FeaturesHeader is the header of an edge's upgrade request that lists,
// comma-separated, the optional parts of protocol 1 the edge understands.
// Frames are decoded strictly (an unknown member is a bad frame), so a hub
// adds a member to its frames only for an edge that names it here; a hub
// that predates the header ignores it.
const FeaturesHeader = "Edgesync-Features"

// FeatureHeartbeat: the edge reads the welcome's PingIntervalMs and
// HeartbeatTimeoutMs and keeps the heartbeat they ask for (Heartbeat).
const FeatureHeartbeat = "heartbeat"

// Bounds of the heartbeat an edge takes from a hub's welcome: whatever a hub
// asks, an edge pings at most every MinPingInterval and at least every
// MaxPingInterval, and takes a silent hub as gone after at most
// MaxHeartbeatTimeout.
const (
	MinPingInterval     = time.Second
	MaxPingInterval     = time.Minute
	MaxHeartbeatTimeout = 5 * time.Minute
)

// HasFeature reports whether the comma-separated list of a FeaturesHeader
// names feature.
func HasFeature(header, feature string) bool {
	for f := range strings.SplitSeq(header, ",") {
		if strings.TrimSpace(f) == feature {
			return true
		}
	}
	return false
}

// Heartbeat returns how often an edge pings its hub and how long it waits
// for anything from the hub before it takes it as gone, given the hub's
// welcome and the edge's own timeout (0: the hub's).
//
// The hub's interval is bounded to [MinPingInterval, MaxPingInterval]; a
// welcome without one (an older hub) means PingInterval. The timeout is the
// edge's own when set, else the hub's bounded to [2 × interval,
// MaxHeartbeatTimeout], else PongWait. The edge pings at the hub's interval
// but never less often than every half of its timeout: an idle hub sends
// the edge nothing but the pongs to its pings, so with pings every half
// timeout a pong may come a whole interval late before the edge gives up on
// a live hub. Over TCP a pong is delayed, never lost, so one interval of
// slack is enough; a third (two intervals of slack) would make an edge
// following a hub's 20 s interval give up on a dead hub only after a minute.
func Heartbeat(welcome *Frame, own time.Duration) (every, timeout time.Duration) {
	every = PingInterval
	if ms := welcome.PingIntervalMs; ms > 0 {
		every = min(max(time.Duration(ms)*time.Millisecond, MinPingInterval), MaxPingInterval)
	}
	switch {
	case own > 0:
		timeout = own
	case welcome.HeartbeatTimeoutMs > 0:
		timeout = min(max(time.Duration(welcome.HeartbeatTimeoutMs)*time.Millisecond, 2*every), MaxHeartbeatTimeout)
	default:
		timeout = PongWait
	}
	return min(every, timeout/2), timeout
}
