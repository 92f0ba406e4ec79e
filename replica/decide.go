package replica

import (
	"encoding/json"
	"fmt"
)

// Outcomes of an incoming version (the sync protocol's per-write answers).
const (
	OutcomeConfirmed = "confirmed" // confirmed as written
	OutcomeMerged    = "merged"    // merged with a concurrent version into a new one
	OutcomeLost      = "lost"      // a concurrent version won, or the conflict awaits resolution
	OutcomeRejected  = "rejected"  // refused: outside scope, invalid, unknown container
)

// Conflict kinds (docs/architecture.md, Conflicts) and statuses.
const (
	KindInsert  = "insert"
	KindReplace = "replace"
	KindDelete  = "delete"

	StatusResolved   = "resolved"
	StatusUnresolved = "unresolved"
)

// Candidate is a version as the sequencer weighs it.
type Candidate struct {
	Version string
	Origin  string
	// TS is the time decisions take: the version's _ts, or, for a pushed
	// _ts too far ahead of the hub's clock, the hub's receipt time
	// (replica/hub/clock.go).
	TS      int64
	Deleted bool
	Body    []byte // nil for a tombstone
}

// Decision is what the sequencer does with an incoming version.
type Decision struct {
	Outcome string
	// Commit says what becomes the item's new confirmed version:
	// CommitIncoming, CommitMerged (Body/Deleted below) or CommitNothing
	// (the existing version stays).
	Commit  int
	Body    []byte // CommitMerged: the merged document
	Deleted bool   // CommitMerged: the result is a tombstone
	// Conflict is set when the incoming version conflicted.
	Conflict *ConflictDecision
}

// What a decision commits.
const (
	CommitNothing = iota
	CommitIncoming
	CommitMerged
)

// ConflictDecision describes a conflict for the conflicts feed.
type ConflictDecision struct {
	Kind   string
	Status string // resolved or unresolved
	// Loser is "incoming" or "existing": whose version lost (for merge, the
	// incoming one is recorded; both survive in part).
	Loser  string
	Reason string
}

// Resolver decides conflicts of containers with the custom policy. The wasm
// host implements it; a hub without one sends such conflicts to the feed as
// unresolved.
type Resolver interface {
	Resolve(name string, in ResolverInput) (ResolverOutput, error)
}

// ResolverInput is the input of a custom resolver (resolvers/ABI.md).
type ResolverInput struct {
	Kind        string            `json:"kind"`
	Container   string            `json:"container"`
	ID          string            `json:"id"`
	Incoming    json.RawMessage   `json:"incoming"`
	Existing    json.RawMessage   `json:"existing"`
	Base        json.RawMessage   `json:"base"`
	IsTombstone bool              `json:"isTombstone"`
	Conflicting []json.RawMessage `json:"conflicting"`
}

// ResolverOutput is a custom resolver's decision (resolvers/ABI.md).
type ResolverOutput struct {
	Action   string          `json:"action"` // incoming, existing, merge, delete, defer
	Document json.RawMessage `json:"document,omitempty"`
	Reason   string          `json:"reason,omitempty"`
}

// Decide is the sequencer's decision for an incoming version, a pure function
// of the incoming version and the version it was written over (incomingBase),
// the item's current confirmed version (nil if the item never existed), the
// common ancestor's content if the hub still has it (nil otherwise), and the
// container's policy.
//
// A conflict is an incoming version whose base is not the current version,
// except a create over a tombstone the writer never saw (base ""), which is a
// fresh create. Last-writer-wins compares the number at the policy's path
// (missing or not a number: _ts), then the version ids as strings, the higher
// winning: the same order on every hub and in every arrival order. A delete
// wins over an insert or a replace under lww and merge.
func Decide(container, id string, in Candidate, incomingBase string, cur *Candidate, base *Candidate, p ConflictPolicy, res Resolver) Decision {
	if cur == nil || cur.Version == incomingBase || cur.Deleted && incomingBase == "" && !in.Deleted {
		return Decision{Outcome: OutcomeConfirmed, Commit: CommitIncoming}
	}
	kind := KindReplace
	switch {
	case in.Deleted || cur.Deleted:
		kind = KindDelete
	case incomingBase == "":
		kind = KindInsert
	}
	resolved := func(loser, reason string) *ConflictDecision {
		return &ConflictDecision{Kind: kind, Status: StatusResolved, Loser: loser, Reason: reason}
	}
	unresolved := func(reason string) Decision {
		return Decision{Outcome: OutcomeLost, Commit: CommitNothing,
			Conflict: &ConflictDecision{Kind: kind, Status: StatusUnresolved, Loser: "incoming", Reason: reason}}
	}
	incomingWins := func() bool {
		if in.Deleted != cur.Deleted {
			return in.Deleted // a delete wins
		}
		return lwwGreater(in, *cur, p.Path)
	}
	switch p.Mode {
	case "", ModeLWW:
		if in.Deleted && cur.Deleted {
			return Decision{Outcome: OutcomeLost, Commit: CommitNothing, Conflict: resolved("incoming", "both deleted")}
		}
		if incomingWins() {
			return Decision{Outcome: OutcomeConfirmed, Commit: CommitIncoming, Conflict: resolved("existing", "lww: incoming wins")}
		}
		return Decision{Outcome: OutcomeLost, Commit: CommitNothing, Conflict: resolved("incoming", "lww: existing wins")}
	case ModeMerge:
		if in.Deleted || cur.Deleted {
			if in.Deleted && cur.Deleted {
				return Decision{Outcome: OutcomeLost, Commit: CommitNothing, Conflict: resolved("incoming", "both deleted")}
			}
			if in.Deleted {
				return Decision{Outcome: OutcomeConfirmed, Commit: CommitIncoming, Conflict: resolved("existing", "merge: a delete wins")}
			}
			return Decision{Outcome: OutcomeLost, Commit: CommitNothing, Conflict: resolved("incoming", "merge: a delete wins")}
		}
		var baseBody []byte
		if base != nil && !base.Deleted {
			baseBody = base.Body
		}
		merged, err := MergeJSON(baseBody, cur.Body, in.Body, lwwGreater(in, *cur, defaultLWWPath))
		if err != nil {
			return unresolved(fmt.Sprintf("merge failed: %v", err))
		}
		reason := "merge: three-way against the base"
		if baseBody == nil {
			reason = "merge: base unknown, union of both sides"
		}
		return Decision{Outcome: OutcomeMerged, Commit: CommitMerged, Body: merged, Conflict: resolved("incoming", reason)}
	case ModeManual:
		return unresolved("manual policy: waiting for resolution")
	case ModeCustom:
		if res == nil {
			return unresolved(fmt.Sprintf("resolver %q is not available on this hub", p.Resolver))
		}
		input := ResolverInput{Kind: kind, Container: container, ID: id, Incoming: rawOrNull(in.Body), Existing: rawOrNull(cur.Body),
			IsTombstone: in.Deleted || cur.Deleted, Conflicting: []json.RawMessage{}}
		if base != nil {
			input.Base = rawOrNull(base.Body)
		} else {
			input.Base = json.RawMessage("null")
		}
		out, err := res.Resolve(p.Resolver, input)
		if err != nil {
			return unresolved(fmt.Sprintf("resolver %q: %v", p.Resolver, err))
		}
		why := "custom: " + out.Action
		if out.Reason != "" {
			why += ": " + out.Reason
		}
		switch out.Action {
		case "incoming":
			return Decision{Outcome: OutcomeConfirmed, Commit: CommitIncoming, Conflict: resolved("existing", why)}
		case "existing":
			return Decision{Outcome: OutcomeLost, Commit: CommitNothing, Conflict: resolved("incoming", why)}
		case "delete":
			if in.Deleted {
				return Decision{Outcome: OutcomeConfirmed, Commit: CommitIncoming, Conflict: resolved("existing", why)}
			}
			if cur.Deleted {
				return Decision{Outcome: OutcomeLost, Commit: CommitNothing, Conflict: resolved("incoming", why)}
			}
			return Decision{Outcome: OutcomeMerged, Commit: CommitMerged, Deleted: true, Conflict: resolved("incoming", why)}
		case "merge":
			return Decision{Outcome: OutcomeMerged, Commit: CommitMerged, Body: out.Document, Conflict: resolved("incoming", why)}
		case "defer":
			return unresolved("custom: deferred: " + out.Reason)
		}
		return unresolved(fmt.Sprintf("resolver %q returned action %q", p.Resolver, out.Action))
	}
	return unresolved(fmt.Sprintf("unknown policy %q", p.Mode))
}

func rawOrNull(b []byte) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return b
}

// lwwGreater reports whether a beats b under last-writer-wins on path.
func lwwGreater(a, b Candidate, path string) bool {
	na, nb := lwwNumber(a, path), lwwNumber(b, path)
	if na != nb {
		return na > nb
	}
	return a.Version > b.Version
}

// lwwNumber is the number at path in c's body; _ts when path is /_ts, the
// value is missing or not a number.
func lwwNumber(c Candidate, path string) float64 {
	if path == "" || path == defaultLWWPath || c.Body == nil {
		return float64(c.TS)
	}
	segs, err := parsePath(path)
	if err != nil {
		return float64(c.TS)
	}
	v := c.Body
	for _, seg := range segs {
		ms, err := objectMembers(v)
		if err != nil {
			return float64(c.TS)
		}
		v = nil
		for _, m := range ms {
			if m.key == seg {
				v = m.value
			}
		}
		if v == nil {
			return float64(c.TS)
		}
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return float64(c.TS)
	}
	f, err := n.Float64()
	if err != nil {
		return float64(c.TS)
	}
	return f
}
