package edge_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/wire"
)

// fakeHub accepts one sync connection, reads the hello, sends frame and
// reports how the edge ended the connection.
func fakeHub(t *testing.T, frame []byte) (url string, closed <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := conn.ReadMessage(); err != nil {
			select {
			case done <- err:
			default:
			}
			return
		}
		conn.WriteMessage(websocket.TextMessage, frame)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				select {
				case done <- err:
				default:
				}
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, done
}

// Invalid UTF-8 in a text frame from the hub fails the connection with
// close code 1007 (RFC 6455, section 8.1).
func TestSyncer_InvalidUTF8FromHubFailsConnection(t *testing.T) {
	url, closed := fakeHub(t, []byte("{\"type\":\"welcome\",\"hubId\":\"h\xff\",\"protocol\":1,\"edge\":\"a\",\"headLsn\":0}"))
	r := openReplica(t, t.TempDir())
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{url}, Token: "t", MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	select {
	case err := <-closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
			t.Fatalf("edge ended the connection with %v, want close code 1007", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the edge did not end the connection")
	}
}

// A hub's refusal of the node id shows in the edge's status with what to
// do about it.
func TestSyncer_NodeMismatchShownInStatus(t *testing.T) {
	url, _ := fakeHub(t, []byte(`{"type":"error","code":"node_mismatch","message":"the token is bound to another node: revoke the edge at the hub and register it again"}`))
	r := openReplica(t, t.TempDir())
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{url}, Token: "t", MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Open(context.Background())
	defer s.Close(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := s.Status()
		if strings.Contains(st.LastError, wire.CodeNodeMismatch) && strings.Contains(st.LastError, "register it again") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status().LastError=%q, want the hub's node_mismatch refusal", st.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
