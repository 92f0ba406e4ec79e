package hubbench

import (
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/bench"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want time.Duration
	}{
		{"plain", "4242 (cloudhub) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 37 0 0 20 0 8 0 100 0 0", 2870 * time.Millisecond},
		{"spaces and parentheses in the name", "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0", 30 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.stat))
			if err != nil {
				t.Fatalf("parseProcStat: %v", err)
			}
			if got != tt.want {
				t.Fatalf("parseProcStat()=%v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "12 cloudhub S 1", "12 (x) S 1 2 3"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
}

// procCPU of this process agrees with getrusage, to the tick.
func TestProcCPU_Self(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) {
	}
	before := bench.ProcessCPU()
	got, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	after := bench.ProcessCPU()
	if got < before-20*time.Millisecond || got > after+20*time.Millisecond {
		t.Fatalf("procCPU(self)=%v, want within 20ms of getrusage's %v..%v", got, before, after)
	}
	if m, err := machineCPU(); err != nil || m < got {
		t.Fatalf("machineCPU()=%v, %v: want at least this process's %v", m, err, got)
	}
}

// localPorts finds the port of a socket this process listens on.
func TestLocalPorts(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if got := localPorts(os.Getpid()); !got[port] {
		t.Fatalf("localPorts(self)=%v, want it to hold %d", got, port)
	}
}
