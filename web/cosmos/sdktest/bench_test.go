package sdktest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/edgesync/edgesync/client"
	"github.com/edgesync/edgesync/internal/proctest"
)

// benchInFlight is how many creates each client keeps in flight.
const benchInFlight = 16

// BenchmarkAzcosmos_Create creates small items in one edgenode without a
// hub through azcosmos and the Cosmos endpoint, and through the Go client
// package and the node's own API, in the same run, each with benchInFlight
// requests in flight; the rate is reported as creates/s.
func BenchmarkAzcosmos_Create(b *testing.B) {
	n := startNode(b, proctest.Edgenode)
	ctx := context.Background()
	c := newClient(b, n.cosmosURL, n.key)
	defer c.Close()
	if _, err := c.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "bench"}, nil); err != nil {
		b.Fatal(err)
	}
	db, err := c.NewDatabase("bench")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "items",
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/region"}}}, nil); err != nil {
		b.Fatal(err)
	}
	cont, err := db.NewContainer("items")
	if err != nil {
		b.Fatal(err)
	}
	own, err := client.New(client.Config{URL: n.apiURL, MaxAttempts: 1,
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchInFlight}}})
	if err != nil {
		b.Fatal(err)
	}
	east := azcosmos.NewPartitionKeyString("east")
	var seq atomic.Int64
	doc := func(prefix string) (string, []byte) {
		id := fmt.Sprintf("%s-%d", prefix, seq.Add(1))
		body, _ := json.Marshal(map[string]any{"id": id, "region": "east", "price": 21.99, "name": "lamp"})
		return id, body
	}
	creates := map[string]func(context.Context) error{
		"azcosmos": func(ctx context.Context) error {
			_, body := doc("sdk")
			_, err := cont.CreateItem(ctx, east, body, nil)
			return err
		},
		"client": func(ctx context.Context) error {
			_, body := doc("api")
			_, err := own.Create(ctx, "bench.items", json.RawMessage(body))
			return err
		},
	}
	// Alternate the two, twice, so that both see the same machine.
	for _, name := range []string{"azcosmos", "client", "azcosmos", "client"} {
		create := creates[name]
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			b.SetParallelism(max(1, benchInFlight/runtime.GOMAXPROCS(0)))
			cpu0, cpuErr := cpuTime(n.pid)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := create(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
			if cpu1, err := cpuTime(n.pid); err == nil && cpuErr == nil {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/float64(b.N), "node-cpu-ms/create")
			}
		})
	}
}

// cpuTime is the CPU time (user and system) process pid has used, from
// /proc; an error where there is no /proc.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses:
	// utime and stime are the 12th and 13th, in clock ticks (100 a second
	// on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
