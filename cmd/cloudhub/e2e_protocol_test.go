package main

// End-to-end scenarios: the sync endpoint spoken to directly.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/wire"
)

func e2eReadFrame(conn *websocket.Conn) (map[string]any, error) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("frame %q: %v", b, err)
	}
	return f, nil
}

// e2eWaitClosed reads until the connection fails, which must happen within
// 10s, and returns the frames read before and the error that ended it.
func e2eWaitClosed(t *testing.T, conn *websocket.Conn, what string) ([]map[string]any, error) {
	t.Helper()
	var frames []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn.SetReadDeadline(deadline)
		_, b, err := conn.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: the hub did not close the connection within 10s", what)
			}
			return frames, err
		}
		var f map[string]any
		json.Unmarshal(b, &f)
		frames = append(frames, f)
	}
}

// e2eWantClose checks that err is a close frame whose reason starts with
// code (PROTOCOL.md: "a close frame whose reason repeats the code").
func e2eWantClose(t *testing.T, err error, code, what string) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Text, code) {
		t.Errorf("%s: connection ended with %v, want a close frame with reason %q", what, err, code)
	}
}

// e2eErrorFrame returns the first error frame of frames, or nil.
func e2eErrorFrame(frames []map[string]any) map[string]any {
	for _, f := range frames {
		if f["type"] == "error" {
			return f
		}
	}
	return nil
}

// TestE2E_SyncProtocolHygiene speaks to the sync endpoint directly: no
// token is a 401, a wrong protocol version gets a protocol_mismatch error
// frame, and an oversized or garbage frame closes the connection, while the
// hub keeps serving a real edge.
func TestE2E_SyncProtocolHygiene(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"h1","pk":"a"}`, http.StatusCreated, nil)
	good := c.startEdge("good", c.registerEdge("good", nil))
	c.waitSynced(15*time.Second, good)
	rawTok := c.registerEdge("raw", nil)
	addr := c.hub.addr
	hello := func(protocol int) string {
		return fmt.Sprintf(`{"type":"hello","nodeId":"e0000000000000001","protocol":%d}`, protocol)
	}
	welcome := func(t *testing.T) *websocket.Conn {
		t.Helper()
		conn, _, err := e2eDial(t, addr, rawTok)
		if err != nil {
			t.Fatalf("dial with a valid token: %v", err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(hello(wire.ProtocolVersion))); err != nil {
			t.Fatal(err)
		}
		f, err := e2eReadFrame(conn)
		if err != nil || f["type"] != "welcome" || f["edge"] != "raw" {
			t.Fatalf("answer to a good hello: %v %v, want a welcome for edge raw", f, err)
		}
		return conn
	}

	t.Run("no_token", func(t *testing.T) {
		for _, tok := range []string{"", "est_unknown", e2eAdminToken} {
			conn, resp, err := e2eDial(t, addr, tok)
			if err == nil {
				conn.Close()
				t.Errorf("token %q: the upgrade succeeded, want 401", tok)
				continue
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("token %q: %v (response %v), want HTTP 401", tok, err, resp)
				continue
			}
			var e struct {
				Code string `json:"code"`
			}
			b, _ := io.ReadAll(resp.Body)
			if json.Unmarshal(b, &e) != nil || e.Code != "unauthorized" {
				t.Errorf("token %q: 401 body %q, want {\"code\":\"unauthorized\"}", tok, b)
			}
		}
	})

	t.Run("protocol_99", func(t *testing.T) {
		conn, _, err := e2eDial(t, addr, rawTok)
		if err != nil {
			t.Fatalf("dial with a valid token: %v", err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(hello(99))); err != nil {
			t.Fatal(err)
		}
		f, err := e2eReadFrame(conn)
		if err != nil || f["type"] != "error" || f["code"] != "protocol_mismatch" {
			t.Fatalf("answer to a hello with protocol 99: %v %v, want {\"type\":\"error\",\"code\":\"protocol_mismatch\"}", f, err)
		}
		if msg, _ := f["message"].(string); !strings.Contains(msg, "99") {
			t.Errorf("protocol_mismatch message %q does not name the version 99", msg)
		}
		_, err = e2eWaitClosed(t, conn, "after protocol_mismatch")
		e2eWantClose(t, err, "protocol_mismatch", "after protocol_mismatch")
	})

	t.Run("garbage_hello", func(t *testing.T) {
		conn, _, err := e2eDial(t, addr, rawTok)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello",`))
		f, err := e2eReadFrame(conn)
		if err != nil || f["type"] != "error" || f["code"] != "bad_frame" {
			t.Errorf("answer to a garbage hello: %v %v, want an error frame with code bad_frame", f, err)
		}
		_, err = e2eWaitClosed(t, conn, "after a garbage hello")
		e2eWantClose(t, err, "bad_frame", "after a garbage hello")
	})

	t.Run("garbage_after_welcome", func(t *testing.T) {
		conn := welcome(t)
		if err := conn.WriteMessage(websocket.TextMessage, []byte("this is {not json")); err != nil {
			t.Fatal(err)
		}
		frames, err := e2eWaitClosed(t, conn, "after a garbage frame")
		if f := e2eErrorFrame(frames); f == nil || f["code"] != "bad_frame" {
			t.Errorf("garbage frame after the welcome: error frame %v, want {\"type\":\"error\",\"code\":\"bad_frame\"} (PROTOCOL.md, Liveness and errors)", f)
		}
		e2eWantClose(t, err, "bad_frame", "after a garbage frame")
	})

	t.Run("push_idempotent", func(t *testing.T) {
		conn := welcome(t)
		push := func(batch int, versions ...string) []map[string]any {
			t.Helper()
			msg := fmt.Sprintf(`{"type":"push","batch":%d,"versions":[%s]}`, batch, strings.Join(versions, ","))
			if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatalf("push batch %d: %v", batch, err)
			}
			for {
				f, err := e2eReadFrame(conn)
				if err != nil {
					t.Fatalf("waiting for the outcomes of batch %d: %v", batch, err)
				}
				if f["type"] == "outcomes" && f["batch"] == float64(batch) {
					var outs []map[string]any
					for _, o := range f["outcomes"].([]any) {
						outs = append(outs, o.(map[string]any))
					}
					if len(outs) != len(versions) {
						t.Fatalf("batch %d: %d outcomes for %d versions: %v", batch, len(outs), len(versions), f)
					}
					return outs
				}
				if f["type"] == "error" {
					t.Fatalf("batch %d: error frame %v", batch, f)
				}
			}
		}
		v := func(version string, n int) string {
			return fmt.Sprintf(`{"container":"notes","id":"r1","op":"create","version":%q,"ts":1700000000,"body":{"id":"r1","pk":"raw","n":%d}}`, version, n)
		}
		first := push(1, v("e0000000000000001-1", 1))
		lsn, _ := first[0]["lsn"].(float64)
		if first[0]["outcome"] != "confirmed" || lsn <= 0 {
			t.Fatalf("first push: outcome %v, want confirmed with an LSN", first[0])
		}
		// The same version id again (a retry), even with other content, and
		// a version id of another node.
		again := push(2, v("e0000000000000001-1", 2), strings.Replace(v("e0000000000000007-7", 3), `"id":"r1"`, `"id":"r2"`, 2))
		if again[0]["outcome"] != "confirmed" || again[0]["lsn"] != first[0]["lsn"] {
			t.Errorf("pushed again: outcome %v, want the first answer %v", again[0], first[0])
		}
		if again[1]["outcome"] != "rejected" {
			t.Errorf("version id of another node: outcome %v, want rejected", again[1])
		}
		status, d := c.hub.getDoc("notes", "r1", "")
		if status != http.StatusOK || d["n"] != 1.0 || e2eLSN(d) != int64(lsn) {
			t.Errorf("hub: GET r1: status %d %v, want n 1 at LSN %v", status, d, lsn)
		}
		if status, _ := c.hub.getDoc("notes", "r2", ""); status != http.StatusNotFound {
			t.Errorf("hub: GET r2 (rejected): status %d, want 404", status)
		}
		count := 0
		for _, r := range c.hub.changes("notes") {
			if r.Version == "e0000000000000001-1" {
				count++
			}
		}
		if count != 1 {
			t.Errorf("hub log has e0000000000000001-1 %d times, want once", count)
		}
	})

	t.Run("oversized_frame", func(t *testing.T) {
		conn := welcome(t)
		big := make([]byte, wire.MaxFrameBytes+1024)
		copy(big, `{"type":"ack","lsn":1,"x":"`)
		for i := 30; i < len(big); i++ {
			big[i] = 'a'
		}
		conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
		werr := conn.WriteMessage(websocket.TextMessage, big)
		_, err := e2eWaitClosed(t, conn, "after a frame over the size limit")
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
			t.Errorf("close code %d, want %d (message too big)", ce.Code, websocket.CloseMessageTooBig)
		}
		t.Logf("write: %v; connection ended: %v", werr, err)
	})

	// The hub still serves: healthz, the real edge's session, its writes.
	c.hub.call(http.MethodGet, "/healthz", nil, http.StatusOK, nil)
	if st := good.mustEdgeStatus(); !st.Connected {
		t.Errorf("good edge: connected=false lastError=%q after the raw clients", st.LastError)
	}
	good.call(http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"g1","pk":"a"}`, http.StatusCreated, nil)
	c.waitSynced(15*time.Second, good)
	if status, d := c.hub.getDoc("notes", "g1", ""); status != http.StatusOK {
		t.Errorf("hub: GET g1 written by the good edge: status %d %v", status, d)
	}
	e2eWaitFor(t, 5*time.Second, "the raw clients' sessions end at the hub", func() error {
		hs, err := c.hub.hubStatus()
		if err == nil && hs.EdgesOnline != 1 {
			err = fmt.Errorf("edgesOnline=%d, want 1 (the good edge)", hs.EdgesOnline)
		}
		return err
	})
}
