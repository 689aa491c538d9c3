package main

import (
	"context"
	"crypto/rand"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/transit"
)

// adminHandler is the admin listener: metrics and liveness, and the admin API
// (/admin/v1/*). It listens on loopback by default; every /admin/v1 route
// authenticates its caller itself.
func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("/admin/v1/transit/", withRequestID(a.transitHandler()))
	a.mountMonitor(mux)
	return mux
}

// transitHandler is the transit API behind service credentials holding the
// transit or admin permission.
func (a *app) transitHandler() http.Handler {
	auth, err := service.New(a.cfg.Services, service.Options{
		Getenv: a.getenv,
		Now:    a.now,
		Logger: a.log,
		OnFailure: func(ctx context.Context, claimed string) {
			a.audit.Record(ctx, store.Event{Type: audit.ServiceAuthFailed, RequestID: requestIDFrom(ctx),
				Detail: map[string]string{"service": claimed}})
		},
	})
	if err != nil {
		// Only a bad built-in hasher parameter set can get here; fail closed.
		a.log.Error("admin: service authentication unavailable", "error", err.Error())
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "service authentication unavailable", http.StatusServiceUnavailable)
		})
	}
	reqID := func(r *http.Request) string { return requestIDFrom(r.Context()) }
	h := transit.Handler(transit.New(a.db, a.sealer, transit.Options{Now: a.now}), transit.HandlerOptions{
		Audit:     a.audit,
		Caller:    func(r *http.Request) string { return service.FromContext(r.Context()).ID },
		RequestID: reqID,
		Logger:    a.log,
	})
	return auth.Require(reqID, service.PermTransit, service.PermAdmin)(h)
}

type requestIDKey struct{}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives every admin request a fresh id (X-Request-Id), used in
// problem bodies, audit events and logs. An inbound id is not trusted here:
// admin callers are not behind the gateway's trusted-proxy rules.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := rand.Text()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}
