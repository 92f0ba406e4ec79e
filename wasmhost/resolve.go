package wasmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/resolvers/sdk/go/resolver"
)

// Actions a resolver may return.
const (
	ActionIncoming = "incoming"
	ActionExisting = "existing"
	ActionMerge    = "merge"
	ActionDelete   = "delete"
	ActionDefer    = "defer"
)

// MaxReasonBytes bounds a resolver's reason.
const MaxReasonBytes = 1 << 10

// maxConflicting is the most conflicting versions sent in one input.
const maxConflicting = 16

// Resolve runs the resolver on one conflict. The documents' bytes are
// spliced into the input as they are (they are stored, valid JSON); nothing
// is re-encoded. The output is checked: a known action, a document only with
// merge (a JSON object), nothing else.
func (m *Module) Resolve(ctx context.Context, in replica.ResolverInput) (replica.ResolverOutput, Result, error) {
	fixed := len(in.Incoming) + len(in.Existing) + len(in.Base) + len(in.ID) + len(in.Container) + 160
	if fixed > m.h.limits.InputBytes {
		err := callErr(ReasonInput, "input of at least %d bytes over the limit of %d", fixed, m.h.limits.InputBytes)
		m.stats.record(0, ReasonInput)
		return replica.ResolverOutput{}, Result{}, err
	}
	// conflicting is trimmed to the limits: the newest are kept.
	conflicting := in.Conflicting
	if len(conflicting) > maxConflicting {
		conflicting = conflicting[len(conflicting)-maxConflicting:]
	}
	for room := m.h.limits.InputBytes - fixed; ; conflicting = conflicting[1:] {
		n := 0
		for _, c := range conflicting {
			n += len(c) + 1
		}
		if n <= room {
			break
		}
	}
	res, err := m.call(ctx, func(b []byte) []byte {
		b = append(b, `{"kind":`...)
		b = strconv.AppendQuote(b, in.Kind)
		b = append(b, `,"container":`...)
		b = strconv.AppendQuote(b, in.Container)
		b = append(b, `,"id":`...)
		b = appendJSONString(b, in.ID)
		b = append(b, `,"incoming":`...)
		b = appendRaw(b, in.Incoming)
		b = append(b, `,"existing":`...)
		b = appendRaw(b, in.Existing)
		b = append(b, `,"base":`...)
		b = appendRaw(b, in.Base)
		b = append(b, `,"isTombstone":`...)
		b = strconv.AppendBool(b, in.IsTombstone)
		b = append(b, `,"conflicting":[`...)
		for i, c := range conflicting {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendRaw(b, c)
		}
		return append(b, "]}"...)
	})
	if err != nil {
		return replica.ResolverOutput{}, res, err
	}
	out, err := ParseOutput(res.Output)
	if err != nil {
		m.stats.fail(ReasonOutput)
		return replica.ResolverOutput{}, res, err
	}
	return out, res, nil
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

// appendJSONString appends s as a JSON string (ids may hold any Unicode).
func appendJSONString(b []byte, s string) []byte {
	enc, err := json.Marshal(s)
	if err != nil {
		return append(b, `""`...)
	}
	return append(b, enc...)
}

// ParseOutput checks a resolver's output (resolvers/ABI.md) and returns the
// decision. Errors are *CallError with reason "output". It checks the
// decision's structure in one pass without re-encoding the document; the
// hub then validates a merged document as it does every client document.
func ParseOutput(b []byte) (replica.ResolverOutput, error) {
	var out replica.ResolverOutput
	var ferr error
	seen := map[string]bool{}
	err := resolver.EachMember(b, func(k string, v []byte) bool {
		if seen[k] {
			ferr = fmt.Errorf("member %q appears twice", k)
			return false
		}
		seen[k] = true
		switch k {
		case "action":
			out.Action, ferr = resolver.DecodeString(v)
		case "reason":
			out.Reason, ferr = resolver.DecodeString(v)
			if ferr == nil && !utf8.ValidString(out.Reason) {
				ferr = errors.New("reason is not valid UTF-8")
			}
		case "document":
			if string(v) != "null" {
				out.Document = v
			}
		default:
			ferr = fmt.Errorf("unknown member %q (want action, document, reason)", k)
		}
		return ferr == nil
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return out, callErr(ReasonOutput, "output is not a valid decision: %v (output starts %q)", err, preview(b))
	}
	switch out.Action {
	case ActionIncoming, ActionExisting, ActionDelete, ActionDefer:
		if len(out.Document) > 0 {
			return out, callErr(ReasonOutput, "action %q takes no document (only %q does)", out.Action, ActionMerge)
		}
	case ActionMerge:
		if len(out.Document) == 0 || out.Document[0] != '{' {
			return out, callErr(ReasonOutput, "action %q needs a document that is a JSON object", ActionMerge)
		}
	case "":
		return out, callErr(ReasonOutput, "output has no action (want incoming, existing, merge, delete or defer)")
	default:
		return out, callErr(ReasonOutput, "unknown action %q (want incoming, existing, merge, delete or defer)", out.Action)
	}
	if len(out.Reason) > MaxReasonBytes {
		return out, callErr(ReasonOutput, "reason of %d bytes over the limit of %d", len(out.Reason), MaxReasonBytes)
	}
	return out, nil
}

func preview(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// Stats are a module's call statistics: counts since upload (when the hub
// keeps them across restarts, see Registry.Seed), durations of this run.
type Stats struct {
	Calls    int64            `json:"calls"`
	Failures map[string]int64 `json:"failures"` // by reason
	P50      time.Duration    `json:"-"`
	P99      time.Duration    `json:"-"`
	P50Micro float64          `json:"p50Micros"`
	P99Micro float64          `json:"p99Micros"`
}

// stats keeps counts and the durations of the last statsWindow calls.
type stats struct {
	mu       sync.Mutex
	calls    int64
	failures map[string]int64
	window   []time.Duration
	next     int
}

const statsWindow = 4096

func (s *stats) record(d time.Duration, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if reason != "" {
		s.failLocked(reason)
	}
	if len(s.window) < statsWindow {
		s.window = append(s.window, d)
	} else {
		s.window[s.next] = d
		s.next = (s.next + 1) % statsWindow
	}
}

func (s *stats) seed(calls int64, failures map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls += calls
	for reason, n := range failures {
		if s.failures == nil {
			s.failures = map[string]int64{}
		}
		s.failures[reason] += n
	}
}

func (s *stats) fail(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(reason)
}

func (s *stats) failLocked(reason string) {
	if s.failures == nil {
		s.failures = map[string]int64{}
	}
	s.failures[reason]++
}

// Stats returns the module's call statistics.
func (m *Module) Stats() Stats {
	m.stats.mu.Lock()
	st := Stats{Calls: m.stats.calls, Failures: map[string]int64{}}
	for k, v := range m.stats.failures {
		st.Failures[k] = v
	}
	w := slices.Clone(m.stats.window)
	m.stats.mu.Unlock()
	if len(w) > 0 {
		slices.Sort(w)
		st.P50 = w[(len(w)-1)*50/100]
		st.P99 = w[(len(w)-1)*99/100]
		st.P50Micro = float64(st.P50.Nanoseconds()) / 1e3
		st.P99Micro = float64(st.P99.Nanoseconds()) / 1e3
	}
	return st
}
