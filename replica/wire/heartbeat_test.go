package wire_test

import (
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/wire"
)

func TestHeartbeat(t *testing.T) {
	tests := []struct {
		name                   string
		intervalMs, timeoutMs  int64
		own                    time.Duration
		wantEvery, wantTimeout time.Duration
	}{
		{name: "older hub", wantEvery: 10 * time.Second, wantTimeout: 30 * time.Second},
		{name: "older hub, own timeout", own: 9 * time.Second, wantEvery: 4500 * time.Millisecond, wantTimeout: 9 * time.Second},
		{name: "hub's heartbeat", intervalMs: 20000, timeoutMs: 40000, wantEvery: 20 * time.Second, wantTimeout: 40 * time.Second},
		{name: "own timeout shorter", intervalMs: 20000, timeoutMs: 40000, own: 30 * time.Second, wantEvery: 15 * time.Second, wantTimeout: 30 * time.Second},
		{name: "own timeout longer", intervalMs: 20000, timeoutMs: 40000, own: time.Minute, wantEvery: 20 * time.Second, wantTimeout: time.Minute},
		{name: "interval without timeout", intervalMs: 20000, wantEvery: 15 * time.Second, wantTimeout: 30 * time.Second},
		{name: "interval too short", intervalMs: 1, timeoutMs: 1, wantEvery: time.Second, wantTimeout: 2 * time.Second},
		{name: "interval too long", intervalMs: 3_600_000, timeoutMs: 7_200_000, wantEvery: time.Minute, wantTimeout: 5 * time.Minute},
		{name: "timeout below two intervals", intervalMs: 20000, timeoutMs: 25000, wantEvery: 20 * time.Second, wantTimeout: 40 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			every, timeout := wire.Heartbeat(&wire.Frame{Type: wire.TypeWelcome, PingIntervalMs: tt.intervalMs, HeartbeatTimeoutMs: tt.timeoutMs}, tt.own)
			if every != tt.wantEvery || timeout != tt.wantTimeout {
				t.Errorf("Heartbeat()=%s, %s, want %s, %s", every, timeout, tt.wantEvery, tt.wantTimeout)
			}
		})
	}
}

func TestHasFeature(t *testing.T) {
	tests := []struct {
		name, header string
		want         bool
	}{
		{name: "absent", header: "", want: false},
		{name: "alone", header: "heartbeat", want: true},
		{name: "in a list", header: "other, heartbeat ,more", want: true},
		{name: "prefix only", header: "heartbeats", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.HasFeature(tt.header, wire.FeatureHeartbeat); got != tt.want {
				t.Errorf("HasFeature(%q)=%v, want %v", tt.header, got, tt.want)
			}
		})
	}
}

// A welcome with a negative heartbeat is a bad frame.
func TestDecode_WelcomeHeartbeat(t *testing.T) {
	if _, err := wire.Decode([]byte(`{"type":"welcome","hubId":"h","protocol":1,"pingIntervalMs":20000,"heartbeatTimeoutMs":40000}`)); err != nil {
		t.Fatalf("Decode(welcome with a heartbeat): %v", err)
	}
	if _, err := wire.Decode([]byte(`{"type":"welcome","hubId":"h","protocol":1,"pingIntervalMs":-1}`)); err == nil {
		t.Fatal("Decode(welcome with a negative pingIntervalMs) succeeded, want an error")
	}
}
