package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/httpapi"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

func cmdServe(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "serve", "serve --config FILE")
	cfgPath := fs.String("config", "", "config file (YAML)")
	noMigrate := fs.Bool("no-migrate", false, "do not apply schema migrations at start-up (run `gatehouse migrate` instead)")
	if err := parseFlags(e, fs, args); err != nil {
		return helpOK(err)
	}
	cfg, err := loadConfig(*cfgPath, e.getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	a, err := openApp(ctx, cfg, log, e.getenv, appOptions{skipMigrate: *noMigrate})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.serve(ctx, e, nil)
}

// serve runs the listeners until ctx ends, then shuts down gracefully: the
// listeners close, in-flight requests get server.shutdown_timeout to finish.
// It prints "serving https://ADDR" on stdout once the listener accepts (the
// end-to-end tests and the demo read it).
func (a *app) serve(ctx context.Context, e env, onListen func(addr string)) error {
	cfg := a.cfg
	certs, err := tlsutil.NewFileCerts(cfg.Server.TLS.CertFile, cfg.Server.TLS.KeyFile, tlsutil.FileCertOptions{Logger: a.log})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	tlsCfg, err := tlsutil.ServerConfig(certs, cfg.Server.TLS.MinVersion)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	proxies, err := reqctx.ParseProxies(cfg.Server.TrustedProxies)
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Options{
		Routes:       cfg.Routes,
		Upstreams:    cfg.Upstreams,
		Plans:        cfg.Plans,
		DefaultPlan:  cfg.Identity.DefaultPlan,
		Limits:       cfg.Limits,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Verifier:     a.cache,
		Revocations:  a.revoked,
		Limiter:      a.limiter,
		Policy:       a.policy,
		Observer:     a.metrics,
		Logger:       a.log,
		Now:          a.now,
	})
	if err != nil {
		return err
	}
	defer gw.Close()
	handler := httpapi.NewServer(httpapi.Deps{
		Fallback:             gw,
		Edge:                 gw.Edge,
		Revocations:          a.revoked,
		Logger:               a.log,
		Accounts:             a.accounts,
		Families:             a.families,
		Access:               a.access,
		Sessions:             a.db,
		Keys:                 a.ring,
		Audit:                a.audit,
		Ready:                a.ready,
		Proxies:              proxies,
		Now:                  a.now,
		Issuer:               cfg.Issuer,
		Algorithm:            cfg.Tokens.Algorithm,
		Scope:                cfg.Tokens.Scope,
		MaxBodyBytes:         cfg.Server.MaxBodyBytes,
		JWKSCacheTTL:         cfg.Keys.JWKSCacheTTL.D(),
		RequireVerifiedEmail: cfg.Identity.RequireVerifiedEmail,
	})
	srv := newHTTPServer(cfg, handler, tlsCfg)
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Server.Listen, err)
	}
	addr := ln.Addr().String()
	a.log.Info("listening", "addr", addr, "issuer", cfg.Issuer)
	fmt.Fprintf(e.stdout, "serving https://%s\n", addr)
	if onListen != nil {
		onListen(addr)
	}

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.ring.Run(bg) })
	wg.Go(func() { a.purgeLoop(bg) })
	wg.Go(func() { a.revoked.Run(bg) })
	wg.Go(func() { a.memLimit.Run(bg) })

	var admin *http.Server
	if !cfg.Admin.Disabled {
		admin = newHTTPServer(cfg, a.adminHandler(), tlsCfg)
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			stopBG()
			wg.Wait()
			return fmt.Errorf("admin listen %s: %w", cfg.Admin.Listen, err)
		}
		a.log.Info("admin listening", "addr", aln.Addr().String())
		fmt.Fprintf(e.stdout, "admin https://%s\n", aln.Addr())
		wg.Go(func() {
			if err := admin.ServeTLS(aln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("admin listener", "error", err.Error())
			}
		})
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err = <-errc:
		if admin != nil {
			admin.Close()
		}
	case <-ctx.Done():
		a.log.Info("shutting down", "grace", cfg.Server.ShutdownTimeout.D().String())
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
		if admin != nil {
			_ = admin.Shutdown(sctx)
		}
		err = srv.Shutdown(sctx)
		cancel()
		<-errc
	}
	stopBG()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// adminHandler is the admin listener: metrics and liveness. Loopback by
// default; the admin API and dashboard join it later.
func (a *app) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux
}

func newHTTPServer(cfg *config.Config, h http.Handler, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		ReadTimeout:       cfg.Server.ReadTimeout.D(),
		WriteTimeout:      cfg.Server.WriteTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
	}
}

// purgeLoop deletes dead sessions and old events hourly. Revoked sessions are
// kept until they would have expired anyway, so the record stays for audits.
func (a *app) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := a.now()
		if n, err := a.db.PurgeExpired(ctx, now, now.Add(-a.cfg.Audit.Retention.D())); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("purge expired rows", "error", err.Error())
			}
		} else if n > 0 {
			a.log.Info("purged expired rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
