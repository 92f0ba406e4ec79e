package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// Machine describes where a benchmark ran, for the header of its report.
type Machine struct {
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"numCpu"`
	CPU        string `json:"cpu"` // model name from /proc/cpuinfo; empty if unknown
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Go         string `json:"go"`
	GCPercent  int    `json:"gcPercent"`   // GOGC in force (-1: off)
	MemLimitMB int64  `json:"memLimitMiB"` // GOMEMLIMIT in force
}

// ThisMachine returns the machine the process runs on.
func ThisMachine() Machine {
	return Machine{
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPU:        cpuModel("/proc/cpuinfo"),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		Go:         runtime.Version(),
		GCPercent:  int(gcSetting("/gc/gogc:percent")),
		MemLimitMB: int64(gcSetting("/gc/gomemlimit:bytes") >> 20),
	}
}

// gcSetting reads one of the collector's settings from runtime/metrics.
func gcSetting(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func (m Machine) String() string {
	cpu := m.CPU
	if cpu == "" {
		cpu = "unknown CPU"
	}
	return fmt.Sprintf("GOMAXPROCS %d (%d CPUs), %s, %s/%s, %s, GOGC %d, GOMEMLIMIT %d MiB", m.GOMAXPROCS, m.NumCPU, cpu, m.OS, m.Arch, m.Go, m.GCPercent, m.MemLimitMB)
}

// cpuModel returns the first "model name" of a cpuinfo file, or "".
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAverage is the 1-minute load average from /proc/loadavg, or -1 where
// there is none. On a shared machine it tells whether others were busy.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
