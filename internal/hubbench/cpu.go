package hubbench

// CPU time of the processes of a tier run, per document: the hubs (from
// /proc/PID/stat), this process (getrusage), the PostgreSQL backends
// serving the hubs, and the whole machine (/proc/stat), so that a change
// to any of them is measured by what it costs per document, not by a
// throughput that moves with the machine's other work.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgesync/edgesync/internal/bench"
	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU is the user and system CPU time of process pid, from
// /proc/PID/stat (fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat reads utime+stime from the text of /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold spaces: the
// fields are counted from the last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// machineCPU is the busy CPU time of every core of the machine since boot
// (/proc/stat: all but idle and iowait).
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest times are already in user
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q", v)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// socketInodes is the inodes of the sockets process pid holds open.
func socketInodes(pid int) map[string]bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make(map[string]bool)
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			out[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return out
}

// localPorts is the local TCP ports of the sockets of process pid: a
// hub's ends of its connections to PostgreSQL among them.
func localPorts(pid int) map[int]bool {
	inodes := socketInodes(pid)
	out := make(map[int]bool)
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || !inodes[fl[9]] {
				continue
			}
			_, port, ok := strings.Cut(fl[1], ":")
			if !ok {
				continue
			}
			if p, err := strconv.ParseInt(port, 16, 32); err == nil {
				out[int(p)] = true
			}
		}
		f.Close()
	}
	return out
}

// cpuMeter measures the CPU time a tier run's processes spend from its
// start: each hub, this process, the PostgreSQL backends whose client is
// one of the hubs, and the machine. Backends are found by sample (the
// hubs' pools open and close connections): one that ends between two
// samples loses what it spent since the last one.
type cpuMeter struct {
	conn    *pgx.Conn // nil if it could not connect
	hubs    []*tierProc
	start   time.Time
	hub0    []time.Duration
	self0   time.Duration
	mach0   time.Duration
	backend map[int][2]time.Duration // pid: CPU at its first and last sample
	errs    []string
}

func startCPUMeter(ctx context.Context, pgURL string, hubs []*tierProc) *cpuMeter {
	m := &cpuMeter{hubs: hubs, start: time.Now(), backend: make(map[int][2]time.Duration)}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, pgURL)
	if err != nil {
		m.errs = append(m.errs, err.Error())
	}
	m.conn = conn
	for _, p := range hubs {
		c, err := procCPU(p.cmd.Process.Pid)
		if err != nil {
			m.errs = append(m.errs, err.Error())
		}
		m.hub0 = append(m.hub0, c)
	}
	m.self0 = bench.ProcessCPU()
	m.mach0, _ = machineCPU()
	m.sample(ctx, true)
	return m
}

// sample reads the CPU time of the backends serving the hubs now. At the
// start, a backend's first reading is its time then; a backend first
// seen later started during the run and counts from zero.
func (m *cpuMeter) sample(ctx context.Context, atStart bool) {
	ports := make(map[int]bool)
	for _, p := range m.hubs {
		if p.running() {
			for port := range localPorts(p.cmd.Process.Pid) {
				ports[port] = true
			}
		}
	}
	if m.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := m.conn.Query(ctx, `SELECT pid, coalesce(client_port, -1) FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		m.errs = append(m.errs, err.Error())
		return
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid, port int
		if err := rows.Scan(&pid, &port); err != nil {
			m.errs = append(m.errs, err.Error())
			return
		}
		if ports[port] {
			pids = append(pids, pid)
		}
	}
	if err := rows.Err(); err != nil {
		m.errs = append(m.errs, err.Error())
		return
	}
	for _, pid := range pids {
		c, err := procCPU(pid)
		if err != nil {
			continue // ended, or another machine's server
		}
		v, seen := m.backend[pid]
		if !seen {
			if atStart {
				v[0] = c
			}
		}
		v[1] = c
		m.backend[pid] = v
	}
}

// cpuPerDoc is the CPU time per document of each process of a run, in
// microseconds.
type cpuPerDoc struct {
	Hubs     []float64 `json:"hubs"`
	Bench    float64   `json:"bench"`    // this process: the edges and their SQLite
	Postgres float64   `json:"postgres"` // the backends serving the hubs
	Backends int       `json:"backends"` // how many were seen
	Machine  float64   `json:"machine"`  // every core's busy time, others' work included
}

func (c *cpuPerDoc) String() string {
	hubs := make([]string, len(c.Hubs))
	var sum float64
	for i, h := range c.Hubs {
		hubs[i] = fmt.Sprintf("%.0f", h)
		sum += h
	}
	return fmt.Sprintf("CPU per doc: hubs %s µs (%.0f), bench %.0f µs, postgres %.0f µs (%d backends), machine %.0f µs",
		strings.Join(hubs, "+"), sum, c.Bench, c.Postgres, c.Backends, c.Machine)
}

// stop takes the last readings and divides by n documents.
func (m *cpuMeter) stop(ctx context.Context, n int) *cpuPerDoc {
	m.sample(ctx, false)
	if m.conn != nil {
		m.conn.Close(context.Background())
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	out := &cpuPerDoc{}
	for i, p := range m.hubs {
		c, err := procCPU(p.cmd.Process.Pid)
		if err != nil {
			m.errs = append(m.errs, err.Error())
		}
		out.Hubs = append(out.Hubs, per(c-m.hub0[i]))
	}
	out.Bench = per(bench.ProcessCPU() - m.self0)
	var pg time.Duration
	for _, v := range m.backend {
		pg += v[1] - v[0]
	}
	out.Postgres, out.Backends = per(pg), len(m.backend)
	if mc, err := machineCPU(); err == nil {
		out.Machine = per(mc - m.mach0)
	}
	return out
}
