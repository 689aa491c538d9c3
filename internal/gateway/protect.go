package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/protect"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// recordProtection turns protection findings into one audit event. It carries
// kinds, fields, rule ids and the action — never the offending input.
func (g *Gateway) recordProtection(ctx context.Context, rt *route, typ string, action protect.Action, findings []protect.Finding) {
	if g.audit == nil || len(findings) == 0 {
		return
	}
	sc := reqctx.From(ctx)
	kinds, fields, rules := make([]string, 0, len(findings)), make([]string, 0, len(findings)), []string{}
	for i, f := range findings {
		if i == 8 {
			break // enough to act on; a flood of findings must not make a huge row
		}
		kinds = append(kinds, string(f.Kind))
		if f.Field != "" {
			fields = append(fields, f.Field)
		}
		for _, id := range f.RuleIDs {
			rules = append(rules, strconv.Itoa(id))
		}
	}
	e := store.Event{Type: typ, IP: sc.ClientIP, RequestID: sc.RequestID, Detail: map[string]string{
		"route": rt.name, "action": string(action), "kinds": strings.Join(kinds, ","),
	}}
	if len(fields) > 0 {
		e.Detail["fields"] = strings.Join(fields, ",")
	}
	if len(rules) > 0 {
		e.Detail["rule_ids"] = strings.Join(rules, ",")
	}
	if c := sc.Claims; c != nil {
		e.UserID, e.SessionID = c.Subject, c.SessionID
	}
	g.audit.Record(ctx, e)
}

// checkRequestProtection runs the route's request protection. It returns the
// problem to answer when the request is refused.
func (g *Gateway) checkRequestProtection(r *http.Request, rt *route, params map[string]string) (*protect.Violation, bool) {
	v := rt.prot.CheckRequest(r, params)
	if v == nil {
		return nil, false
	}
	typ := audit.RequestFlagged
	if v.Blocked() {
		typ = audit.RequestBlocked
	}
	g.recordProtection(r.Context(), rt, typ, v.Action, v.Findings)
	return v, v.Blocked()
}
