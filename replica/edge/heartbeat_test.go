package edge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/wire"
)

// TestSyncer_PingsAtTheHubsInterval: an edge names the heartbeat feature in
// its upgrade request and pings at the interval the welcome asks for (once
// at the welcome, then every second here); with a hub whose welcome names
// none it keeps wire.PingInterval (one ping in the watch). Either way it
// stays on the hub, which answers its pings.
func TestSyncer_PingsAtTheHubsInterval(t *testing.T) {
	const watch = 2500 * time.Millisecond
	tests := []struct {
		name                  string
		intervalMs, timeoutMs int64
		minPings, maxPings    int64
	}{
		{name: "hub asks 1s", intervalMs: 1000, timeoutMs: 2000, minPings: 3, maxPings: 4},
		{name: "older hub", minPings: 1, maxPings: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pings, sessions atomic.Int64
			welcomed := make(chan struct{}, 1)
			var features atomic.Value
			up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				features.Store(r.Header.Get(wire.FeaturesHeader))
				conn, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer conn.Close()
				sessions.Add(1)
				if _, err := readTestFrame(conn); err != nil {
					return
				}
				b, _ := wire.Encode(&wire.Frame{Type: wire.TypeWelcome, HubID: "hub", Protocol: wire.ProtocolVersion, Edge: "e",
					PingIntervalMs: tt.intervalMs, HeartbeatTimeoutMs: tt.timeoutMs})
				conn.WriteMessage(websocket.TextMessage, b)
				welcomed <- struct{}{}
				conn.SetPingHandler(func(data string) error {
					pings.Add(1)
					return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
				})
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						return
					}
				}
			}))
			t.Cleanup(srv.Close)
			r := openReplica(t, t.TempDir())
			s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{srv.URL}, Token: "t"})
			if err != nil {
				t.Fatal(err)
			}
			s.Open(context.Background())
			defer s.Close(context.Background())
			select {
			case <-welcomed:
			case <-time.After(5 * time.Second):
				t.Fatal("no hello from the edge")
			}
			time.Sleep(watch)
			if got := pings.Load(); got < tt.minPings || got > tt.maxPings {
				t.Errorf("%d pings in %s, want %d to %d", got, watch, tt.minPings, tt.maxPings)
			}
			if got := sessions.Load(); got != 1 {
				t.Errorf("%d sessions, want 1: the edge left a hub that answered", got)
			}
			if got, _ := features.Load().(string); !wire.HasFeature(got, wire.FeatureHeartbeat) {
				t.Errorf("%s: %q, want it to name %q", wire.FeaturesHeader, got, wire.FeatureHeartbeat)
			}
		})
	}
}
