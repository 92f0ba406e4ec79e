package cli

import (
	"errors"
	"log/slog"
	"net"
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
	srv.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := srv.Addr()
	c, derr := net.DialTimeout("tcp", addr, 5*time.Second)
	if derr != nil {
		t.Fatalf("dial the served address: %v", derr)
	}
	c.Close()
	ShutdownCosmos(srv, &err)
	if err != earlier {
		t.Fatalf("after a clean shutdown, err = %v, want %v unchanged", err, earlier)
	}
	if c, derr := net.DialTimeout("tcp", addr, 5*time.Second); derr == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after ShutdownCosmos", addr)
	}
}
