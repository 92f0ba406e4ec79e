package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// sessionCookie carries the id of a dashboard session: opaque, random, kept
// by the hub only as a hash, with an expiry (HubOptions.SessionTTL). HttpOnly,
// so page scripts never see it; SameSite=Strict, so other sites' pages do not
// send it; Secure when the hub is reached over TLS.
const sessionCookie = "edgesync_admin"

// DefaultSessionTTL is how long a dashboard session lasts after login.
const DefaultSessionTTL = 12 * time.Hour

type sessionRequest struct {
	Token string `json:"token"`
}

// login opens a dashboard session for the admin token and sets its cookie.
func (a *Hub) login(c echo.Context) error {
	if err := sameOriginWrite(c.Request()); err != nil {
		return err
	}
	if err := jsonBody(c.Request()); err != nil {
		return err
	}
	body, err := readBody(c, 4<<10)
	if err != nil {
		return err
	}
	var req sessionRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if !a.tokenOK(req.Token) {
		return fmt.Errorf("%w: the admin token was not accepted", hub.ErrUnauthorized)
	}
	id, s, err := a.h.CreateSession(c.Request().Context(), a.sessionBinding(), a.opt.SessionTTL)
	if err != nil {
		return err
	}
	ck := a.cookie(c, id)
	ck.Expires = s.ExpiresAt
	ck.MaxAge = int(a.opt.SessionTTL.Seconds())
	c.SetCookie(ck)
	return c.NoContent(http.StatusNoContent)
}

// logout ends the session on the hub (a copy of the cookie stops working)
// and clears the cookie.
func (a *Hub) logout(c echo.Context) error {
	if err := sameOriginWrite(c.Request()); err != nil {
		return err
	}
	if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if err := a.h.DeleteSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	ck := a.cookie(c, "")
	ck.MaxAge = -1
	c.SetCookie(ck)
	return c.NoContent(http.StatusNoContent)
}

func (a *Hub) cookie(c echo.Context, value string) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: c.Request().TLS != nil || a.opt.SecureCookie}
}

// sessionBinding ties sessions to the admin token that opened them: when the
// token changes, every session ends.
func (a *Hub) sessionBinding() string {
	sum := sha256.Sum256([]byte("edgesync dashboard session\x00" + a.opt.AdminToken))
	return hex.EncodeToString(sum[:])
}

// tokenOK compares a presented token with the admin token in constant time.
func (a *Hub) tokenOK(token string) bool {
	token = strings.TrimSpace(token)
	return a.opt.AdminToken != "" && token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.opt.AdminToken)) == 1
}

// authenticate admits a request with the admin token as a bearer token, or
// with a live dashboard session from the dashboard's own pages: a session
// request from a page of another origin is refused, and so is a
// state-changing one whose body another site's page could have sent
// (text/plain, a form, no Content-Type on a POST).
func (a *Hub) authenticate(c echo.Context) error {
	r := c.Request()
	if auth := r.Header.Get("Authorization"); auth != "" {
		if t, ok := strings.CutPrefix(auth, "Bearer "); ok && a.tokenOK(t) {
			return nil
		}
		return fmt.Errorf("%w: the hub API needs the admin token: Authorization: Bearer <token>", hub.ErrUnauthorized)
	}
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return fmt.Errorf("%w: the hub API needs the admin token: Authorization: Bearer <token>", hub.ErrUnauthorized)
	}
	s, err := a.h.LookupSession(r.Context(), ck.Value)
	if err != nil {
		if errors.Is(err, hub.ErrUnauthorized) {
			return fmt.Errorf("%w: the dashboard session has ended: log in again", hub.ErrUnauthorized)
		}
		return err
	}
	if subtle.ConstantTimeCompare([]byte(s.Binding), []byte(a.sessionBinding())) != 1 {
		return fmt.Errorf("%w: the admin token has changed since this session opened: log in again", hub.ErrUnauthorized)
	}
	if origin, cross := crossOrigin(r); cross {
		return errCrossOrigin(origin)
	}
	if !unsafeMethod(r.Method) {
		return nil
	}
	if err := sameOriginWrite(r); err != nil {
		return err
	}
	if r.Method == http.MethodPost || (r.ContentLength != 0 && simpleBody(r)) {
		return jsonBody(r)
	}
	return nil
}

// sameOriginWrite admits a state-changing browser request only from a page
// of this origin: its Origin or Sec-Fetch-Site must say so.
func sameOriginWrite(r *http.Request) error {
	origin, cross := crossOrigin(r)
	if cross {
		return errCrossOrigin(origin)
	}
	if origin == "" && r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		return fmt.Errorf("%w: a state-changing dashboard request must carry the Origin of the dashboard's page", replica.ErrForbidden)
	}
	return nil
}

// hubContainers is the body of GET /api/v1/containers on a hub.
type hubContainers struct {
	Containers []hub.ContainerInfo `json:"containers"`
}

func (a *Hub) listContainers(c echo.Context) error {
	infos, err := a.h.ContainerInfos(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hubContainers{Containers: infos})
}

func (a *Hub) itemVersions(c echo.Context) error {
	name, id, err := docParams(c)
	if err != nil {
		return err
	}
	vs, err := a.h.ItemVersions(c.Request().Context(), name, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"versions": vs})
}

type tryRequest struct {
	Container string `json:"container"`
	Conflict  int64  `json:"conflict"`
	Version   int    `json:"version"`
}

func (a *Hub) tryResolver(c echo.Context) error {
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	body, err := readBody(c, 4<<10)
	if err != nil {
		return err
	}
	var req tryRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if req.Container == "" || req.Conflict <= 0 || req.Version < 0 {
		return fmt.Errorf("%w: want {\"container\", \"conflict\" (an id), \"version\" (optional)}", replica.ErrInvalid)
	}
	start := time.Now()
	res, err := a.h.TryResolver(c.Request().Context(), name, req.Version, req.Container, req.Conflict)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"resolver": res.Resolver, "decision": res.Decision, "error": res.Error,
		"timeMicros": float64(time.Since(start).Nanoseconds()) / 1e3})
}

// hubEventStatus is the "status" event of the hub's stream.
type hubEventStatus struct {
	HubID               string     `json:"hubId"`
	LSN                 int64      `json:"lsn"`
	EdgesOnline         int        `json:"edgesOnline"`
	UnresolvedConflicts int64      `json:"unresolvedConflicts"`
	WritesPerSecond     float64    `json:"writesPerSecond"`
	Edges               []hub.Edge `json:"edges"`
	Time                int64      `json:"time"` // unix milliseconds
	// The tier, as GET /api/v1/status has it.
	Name      string         `json:"name"`
	Sequencer string         `json:"sequencer"`
	Hubs      []hub.TierHub  `json:"hubs"`
	Takeovers []hub.Takeover `json:"takeovers"`
}

// hubEvents is one client's event stream.
type hubEvents struct {
	h          *hub.Hub
	mu         sync.Mutex
	prevLSN    int64
	prevAt     time.Time
	unresolved int64
}

func (a *Hub) events(c echo.Context) error {
	// The baseline is taken before the first status: a conflict recorded
	// after it is announced.
	n, err := a.h.UnresolvedConflicts(c.Request().Context())
	if err != nil {
		return err
	}
	return streamEvents(c, &hubEvents{h: a.h, prevLSN: a.h.Head(), prevAt: time.Now(), unresolved: n})
}

func (s *hubEvents) start() int64             { return s.h.Head() }
func (s *hubEvents) changed() <-chan struct{} { return s.h.Changed() }
func (s *hubEvents) done() <-chan struct{}    { return s.h.Done() }
func (s *hubEvents) rate(lsn int64, now time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := now.Sub(s.prevAt).Seconds()
	if d < 0.2 {
		d = 0.2
	}
	r := float64(lsn-s.prevLSN) / d
	s.prevLSN, s.prevAt = lsn, now
	return r
}

func (s *hubEvents) status(ctx context.Context) (any, error) {
	edges, err := s.h.Edges(ctx)
	if err != nil {
		return nil, err
	}
	hubs, err := s.h.Hubs(ctx)
	if err != nil {
		return nil, err
	}
	takeovers, err := s.h.Takeovers(ctx, statusTakeovers)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	lsn := s.h.Head()
	// changes keeps the unresolved count current; it runs before each status.
	st := hubEventStatus{HubID: s.h.HubID(), LSN: lsn, EdgesOnline: s.h.EdgesOnline(), UnresolvedConflicts: s.unresolved,
		WritesPerSecond: s.rate(lsn, now), Edges: edges, Time: now.UnixMilli(), Name: s.h.Name(), Hubs: hubs, Takeovers: takeovers}
	for _, th := range hubs {
		if th.Sequencer {
			st.Sequencer = th.Name
		}
	}
	return st, nil
}

// hubChange is the "change" event: a log record without its document.
type hubChange struct {
	Container string `json:"container"`
	LSN       int64  `json:"lsn"`
	CRTS      int64  `json:"crts"`
	Op        string `json:"op"`
	ID        string `json:"id"`
	PK        string `json:"pk"`
	Version   string `json:"version"`
	Origin    string `json:"origin"`
	Policy    string `json:"policy,omitempty"`
	Resolver  string `json:"resolver,omitempty"`
	Resolves  string `json:"resolves,omitempty"`
}

func (s *hubEvents) changes(ctx context.Context, pos int64) ([]event, int64, error) {
	chs, next, err := s.h.LogAfter(ctx, pos, eventsPage, wire.MaxChangesBytes, nil, "")
	if err != nil {
		return nil, pos, err
	}
	evs := make([]event, 0, len(chs)+1)
	for _, ch := range chs {
		evs = append(evs, event{"change", hubChange{Container: ch.Container, LSN: ch.LSN, CRTS: ch.CRTS, Op: ch.Op, ID: ch.ID, PK: ch.PK,
			Version: ch.Version, Origin: ch.Origin, Policy: ch.Policy, Resolver: ch.Resolver, Resolves: ch.Resolves}})
	}
	// A conflict recorded or resolved changes the unresolved count.
	if n, err := s.h.UnresolvedConflicts(ctx); err == nil && n != s.unresolved {
		evs = append(evs, event{"conflict", map[string]int64{"unresolvedConflicts": n}})
		s.unresolved = n
	}
	return evs, next, nil
}

// edgeEvents is one client's event stream on an edge.
type edgeEvents struct{ a *Edge }

func (a *Edge) events(c echo.Context) error { return streamEvents(c, edgeEvents{a}) }

func (s edgeEvents) start() int64             { return s.a.r.Status().LastSeq }
func (s edgeEvents) changed() <-chan struct{} { return s.a.r.Changed() }
func (s edgeEvents) done() <-chan struct{}    { return s.a.r.Done() }

func (s edgeEvents) status(context.Context) (any, error) { return s.a.statusValue(), nil }

func (s edgeEvents) changes(ctx context.Context, pos int64) ([]event, int64, error) {
	chs, next, err := s.a.r.RecentChanges(ctx, pos, eventsPage)
	if err != nil {
		return nil, pos, err
	}
	evs := make([]event, len(chs))
	for i := range chs {
		evs[i] = event{"change", &chs[i]}
	}
	return evs, next, nil
}

// onlineSetter is a sync client that can be taken offline (edge.Link).
type onlineSetter interface {
	SetOnline(on bool) error
	Online() bool
}

var _ onlineSetter = (*edge.Link)(nil)

func (a *Edge) setOnline(on bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		l, ok := a.opt.Sync.(onlineSetter)
		if !ok {
			return fmt.Errorf("%w: this edge has no hub to sync with (start it with --hub)", replica.ErrInvalid)
		}
		if err := l.SetOnline(on); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}
