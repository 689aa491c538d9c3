package gateway

import (
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/problem"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Bans answers whether a client address, user or session is banned
// (ban.List). Check must read memory only: it runs on every request.
type Bans interface {
	Check(ip, user, session string) (store.Ban, bool)
}

// Decision is one request as the gateway decided it, for the monitor's
// detectors and event stream. It carries ids and the route's path parameters,
// never a token or a body.
type Decision struct {
	Route     string // route name; "" when none matched
	Reason    string // "allowed" or the denial reason (as for Observer.Request)
	Status    int
	Method    string
	Params    map[string]string // the route's path parameters (object ids)
	ClientIP  string
	UserID    string // the verified token's sub, "" when anonymous
	SessionID string
	RequestID string
}

// Decisions receives every request the gateway decides (allowed ones too, so
// that error rates have a baseline). Decide is on the request path: it must not
// block or do I/O (the monitor counts, and queues denials on a bounded bus).
type Decisions interface {
	Decide(d Decision)
}

type nopDecisions struct{}

func (nopDecisions) Decide(Decision) {}

type noBans struct{}

func (noBans) Check(string, string, string) (store.Ban, bool) { return store.Ban{}, false }

// banned answers 403 when the request's IP, user or session is banned; it
// returns true when the request was refused. The caller reports the decision.
func (g *Gateway) banned(w http.ResponseWriter, sc *reqctx.Scope) bool {
	user, sid := "", ""
	if sc.Claims != nil {
		user, sid = sc.Claims.Subject, sc.Claims.SessionID
	}
	b, ok := g.bans.Check(sc.ClientIP, user, sid)
	if !ok {
		return false
	}
	p := problem.New(http.StatusForbidden, "banned", "Forbidden", "this client is temporarily banned")
	if b.Kind != store.BanIP {
		p.Detail = "this account or session is temporarily banned"
	}
	problem.Write(w, p, sc.RequestID)
	return true
}

// edgeBanned is banned for the edge, where no route has been chosen yet.
func (g *Gateway) edgeBanned(w http.ResponseWriter, r *http.Request, sc *reqctx.Scope) bool {
	if !g.banned(w, sc) {
		return false
	}
	g.obs.Request("", "banned", http.StatusForbidden, 0)
	g.decisions.Decide(Decision{Reason: "banned", Status: http.StatusForbidden, Method: r.Method, ClientIP: sc.ClientIP, RequestID: sc.RequestID})
	return true
}

func decisionOf(sc *reqctx.Scope, method, route, reason string, status int, params map[string]string) Decision {
	d := Decision{Route: route, Reason: reason, Status: status, Method: method, Params: params, ClientIP: sc.ClientIP, RequestID: sc.RequestID}
	if sc.Claims != nil {
		d.UserID, d.SessionID = sc.Claims.Subject, sc.Claims.SessionID
	}
	return d
}
