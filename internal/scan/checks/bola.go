package checks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
	"github.com/gatehouse-dev/gatehouse/internal/scan/openapi"
)

// BOLA tests object-level authorisation with two users: user A creates an
// object through each create operation, then user B tries to read, replace,
// update and delete it. Only objects the scan created are ever deleted.
type BOLA struct{}

var _ scan.Check = BOLA{}

var bolaRules = []scan.Rule{
	{ID: "GH-BOLA-001", Title: "Another user can access an object (broken object-level authorisation)", Severity: scan.SeverityHigh,
		Fix: "Check ownership on every object access (e.g. WHERE owner_id = caller), or declare an owner rule for the route at the gateway; return 404 for objects the caller does not own."},
}

// ID implements scan.Check.
func (BOLA) ID() string { return "bola" }

// Phase implements scan.Check.
func (BOLA) Phase() scan.Phase { return scan.PhaseActive }

// Rules implements scan.Check.
func (BOLA) Rules() []scan.Rule { return bolaRules }

// maxCreates bounds how many create operations are exercised.
const maxCreates = 5

// Run implements scan.Check.
func (BOLA) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	if t.Spec == nil || len(t.Sessions) < 2 {
		return nil, nil
	}
	a, b := t.Sessions[0], t.Sessions[1]
	var out []scan.Finding
	creates := 0
	for _, op := range t.Spec.Operations {
		if op.Method != http.MethodPost || !op.HasStatus("201") || len(op.PathParams()) > 0 || creates >= maxCreates {
			continue
		}
		items := itemOperations(t.Spec, op.Path)
		if len(items) == 0 {
			continue
		}
		creates++
		fs, err := bolaOne(ctx, t, op, items, a, b)
		out = append(out, fs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// itemOperations finds GET/PUT/PATCH/DELETE on collection + "/{param}".
func itemOperations(s *openapi.Spec, collection string) map[string]openapi.Operation {
	out := map[string]openapi.Operation{}
	prefix := strings.TrimSuffix(collection, "/") + "/{"
	for _, op := range s.Operations {
		rest, ok := strings.CutPrefix(op.Path, prefix)
		if !ok || strings.Contains(rest, "/") || !strings.HasSuffix(rest, "}") {
			continue
		}
		switch op.Method {
		case http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete:
			out[op.Method] = op
		}
	}
	return out
}

func marker() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "gatehouse-scan-" + hex.EncodeToString(b)
}

func bolaOne(ctx context.Context, t *scan.Target, create openapi.Operation, items map[string]openapi.Operation, a, b scan.Session) ([]scan.Finding, error) {
	mark := marker()
	body, _ := json.Marshal(openapi.Sample(create.RequestBody, mark))
	jsonHdr := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	resp, err := t.Do(ctx, scan.Request{Method: http.MethodPost, Path: create.Path, Token: a.Token, Body: body, Header: jsonHdr})
	if err != nil {
		return nil, ignoreBackoff(err)
	}
	if !scan.Is2xx(resp.Status) {
		return nil, nil
	}
	id := objectID(resp.Body)
	if id == "" {
		return nil, nil
	}
	var out []scan.Finding
	deleted := false
	// The object exists and is ours from here on: clean it up on every path out.
	defer func() {
		if del, ok := items[http.MethodDelete]; ok && !deleted {
			if p, ok := t.FillPath(del, func(string) string { return id }); ok {
				_, _ = t.Do(context.WithoutCancel(ctx), scan.Request{Method: http.MethodDelete, Path: p, Token: a.Token})
			}
		}
	}()
	if get, ok := items[http.MethodGet]; ok {
		p, _ := t.FillPath(get, func(string) string { return id })
		own, err := t.Do(ctx, scan.Request{Method: http.MethodGet, Path: p, Token: a.Token, Header: jsonHdr})
		if err != nil {
			return out, ignoreBackoff(err)
		}
		if !scan.Is2xx(own.Status) {
			return out, nil // the owner cannot read it either: the URL guess is wrong
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		op, ok := items[m]
		if !ok {
			continue
		}
		p, _ := t.FillPath(op, func(string) string { return id })
		req := scan.Request{Method: m, Path: p, Token: b.Token, Header: jsonHdr}
		if m == http.MethodPut || m == http.MethodPatch {
			req.Body, _ = json.Marshal(openapi.Sample(op.RequestBody, mark+"-b"))
		}
		r, err := t.Do(ctx, req)
		if err != nil {
			if errors.Is(err, scan.ErrBackoff) {
				continue
			}
			return out, err
		}
		if !scan.Is2xx(r.Status) || t.SoftNotFound(r) {
			continue
		}
		if m == http.MethodGet && !strings.Contains(string(r.Body), mark) && !strings.Contains(string(r.Body), id) {
			continue // 2xx but not A's data
		}
		if m == http.MethodDelete {
			deleted = true
		}
		out = append(out, newFinding(t, bolaRules[0], "bola", m, op.Path, m, r, "Bearer <user B's token>",
			fmt.Sprintf("User %q created object %q with %s %s; user %q got %d for %s on it.", a.User, id, create.Method, create.Path, b.User, r.Status, m)))
	}
	return out, nil
}

func ignoreBackoff(err error) error {
	if errors.Is(err, scan.ErrBackoff) {
		return nil
	}
	return err
}

// objectID reads "id" from a JSON object (string or number).
func objectID(b []byte) string {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	switch v := m["id"].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	}
	return ""
}
