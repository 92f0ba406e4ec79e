package cli

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

func TestShutdownCosmos_StopsTheServerAndKeepsTheError(t *testing.T) {
	earlier := errors.New("run failed")
	err := earlier
	ShutdownCosmos(nil, &err)
	if err != earlier {
		t.Fatalf("with no server, err = %v, want %v unchanged", err, earlier)
	}

	srv, lerr := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if lerr != nil {
		t.Fatal(lerr)
	}
	// The handler answers with a marker: after the shutdown another
	// process's listener may get the freed port (or a dial connect to
	// itself), and only this server's answer counts.
	const marker = "served by the server under test"
	srv.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, marker) }))
	addr := srv.Addr()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, gerr := client.Get("http://" + addr + "/")
	if gerr != nil {
		t.Fatalf("get the served address: %v", gerr)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != marker {
		t.Fatalf("served %q, want %q", b, marker)
	}
	ShutdownCosmos(srv, &err)
	if err != earlier {
		t.Fatalf("after a clean shutdown, err = %v, want %v unchanged", err, earlier)
	}
	if resp, gerr := client.Get("http://" + addr + "/"); gerr == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == marker {
			t.Fatalf("%s still served after ShutdownCosmos", addr)
		}
	}
}
