package hub_test

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica/hub"
)

// TestDefaultAdvertise: a hub listening on one address is reached there;
// one listening on every interface is reached at its host name, since an
// unspecified address leads only to the dialer's own machine.
func TestDefaultAdvertise(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skipf("no host name: %v", err)
	}
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"10.0.0.7:9000", "10.0.0.7:9000"},
		{"[fd00::7]:9000", "[fd00::7]:9000"},
		{"hub-a.example:8080", "hub-a.example:8080"},
		{":8080", net.JoinHostPort(host, "8080")},
		{"0.0.0.0:8080", net.JoinHostPort(host, "8080")},
		{"[::]:8080", net.JoinHostPort(host, "8080")},
	} {
		if got := hub.DefaultAdvertise(tc.listen); got != tc.want {
			t.Errorf("DefaultAdvertise(%q) = %q, want %q", tc.listen, got, tc.want)
		}
	}
}

// TestCheckAdvertise: --advertise takes HOST:PORT that another machine can
// dial, and says what is wrong otherwise.
func TestCheckAdvertise(t *testing.T) {
	for _, ok := range []string{"10.0.0.7:8080", "hub-a.example:443", "[fd00::7]:9000", "localhost:1"} {
		if err := hub.CheckAdvertise(ok); err != nil {
			t.Errorf("CheckAdvertise(%q) = %v, want nil", ok, err)
		}
	}
	for _, tc := range []struct{ addr, says string }{
		{"hub-a", "HOST:PORT"},
		{":8080", "HOST:PORT"},
		{"0.0.0.0:8080", "reaches no other machine"},
		{"[::]:8080", "reaches no other machine"},
		{"hub-a:0", "1 to 65535"},
		{"hub-a:http", "1 to 65535"},
		{"hub-a:70000", "1 to 65535"},
		{strings.Repeat("h", 260) + ":80", "255 bytes"},
	} {
		err := hub.CheckAdvertise(tc.addr)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("CheckAdvertise(%q) = %v, want an error saying %q", tc.addr, err, tc.says)
		}
	}
}
