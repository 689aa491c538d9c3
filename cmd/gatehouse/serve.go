package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/httpapi"
	"github.com/gatehouse-dev/gatehouse/internal/reqctx"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
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
	tr, err := newTransport(cfg, a.log, a.audit)
	if err != nil {
		return err
	}
	defer tr.close()
	tlsCfg, err := tr.serverConfig(cfg.Server.TLS.MinVersion)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	// Session tickets are encrypted with keys derived from the KEK, so every
	// replica resumes every other's sessions (see tlsutil.TicketKeys).
	tickets, err := tlsutil.NewTicketKeys(a.sealer, tlsutil.TicketKeyOptions{Now: a.now})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	tickets.Install(tlsCfg)
	upstreamTLS, err := upstreamTLSConfigs(cfg, a.log)
	if err != nil {
		return err
	}
	pins := &pinMonitor{cfg: cfg, t: tr, log: a.log, audit: a.audit}
	if err := registerTLSMetrics(a, tr, pins); err != nil {
		return err
	}
	a.certLeaf = tr.source.Leaf
	if err := a.openMonitor(e.getenv); err != nil {
		return err
	}
	proxies, err := reqctx.ParseProxies(cfg.Server.TrustedProxies)
	if err != nil {
		return err
	}
	docs, err := readOpenAPI(cfg)
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Options{
		OpenAPI:      docs,
		Audit:        a.audit,
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
		Bans:         a.bans,
		Decisions:    a.decisions(),
		Logger:       a.log,
		Now:          a.now,
		UpstreamTLS:  upstreamTLS,
	})
	if err != nil {
		return err
	}
	defer gw.Close()
	soc, err := a.openSocial(e.getenv)
	if err != nil {
		return err
	}
	handler := httpapi.NewServer(httpapi.Deps{
		Social:               socialLogin(soc),
		Fallback:             gw,
		Edge:                 gw.Edge,
		Revocations:          a.revoked,
		Logger:               a.log,
		Accounts:             a.accounts,
		Passkeys:             a.passkeyAPI(),
		MFA:                  a.mfa,
		MFAFactors:           a.mfa,
		MFAAssertions:        a.passkeyAssertions(),
		Families:             a.families,
		Access:               a.access,
		Sessions:             a.db,
		Keys:                 publishedKeys(a, tr),
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
		Email:                a.emailFlows(),
	})
	srv := newHTTPServer(cfg, handler, tlsCfg, a.log)
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Server.Listen, err)
	}
	// Why a cap: each connection costs memory and a goroutine; past the cap,
	// new connections wait in the kernel's accept queue instead of exhausting us.
	if cfg.Server.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, cfg.Server.MaxConnections)
	}
	// Why tls.NewListener rather than ServeTLS: ServeTLS serves a clone of
	// TLSConfig, and the ticket keys rotated into tlsCfg would never reach it.
	// It wraps the capped listener, so the cap counts TLS connections.
	tlsLn := tls.NewListener(ln, tlsCfg)
	addr := ln.Addr().String()
	a.log.Info("listening", "addr", addr, "issuer", cfg.Issuer)
	fmt.Fprintf(e.stdout, "serving https://%s\n", addr)
	if onListen != nil {
		onListen(addr)
	}

	var plain *http.Server
	var plainLn net.Listener
	if cfg.Server.HTTPListen != "" {
		plain = newPlainHTTPServer(cfg, tr)
		if plainLn, err = net.Listen("tcp", cfg.Server.HTTPListen); err != nil {
			ln.Close()
			return fmt.Errorf("http listen %s: %w", cfg.Server.HTTPListen, err)
		}
		a.log.Info("plain http listening (redirects and ACME challenges only)", "addr", plainLn.Addr().String())
		fmt.Fprintf(e.stdout, "http http://%s\n", plainLn.Addr())
	}

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// The admin listener gets its own copy: net/http's HTTP/2 set-up writes to
	// the TLSConfig of each server it starts.
	adminTLS := tlsCfg.Clone()
	wg.Go(func() { tickets.Run(bg, tlsCfg, adminTLS) })
	wg.Go(func() { pins.run(bg) })
	if plain != nil {
		wg.Go(func() {
			if err := plain.Serve(plainLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("plain http listener", "error", err.Error())
			}
		})
	}
	if tr.acme != nil {
		// After the listeners: the CA's validation requests must find them.
		wg.Go(func() {
			if err := tr.acme.Manage(bg); err != nil && bg.Err() == nil {
				a.log.Error("tls certificate not obtained yet; retrying in the background", "error", err.Error())
			}
		})
	}
	wg.Go(func() { a.ring.Run(bg) })
	wg.Go(func() { a.purgeLoop(bg) })
	wg.Go(func() { a.revoked.Run(bg) })
	wg.Go(func() { a.runMonitor(bg) })
	wg.Go(func() { a.memLimit.Run(bg) })
	if soc != nil {
		wg.Go(func() { soc.Run(bg) })
	}
	if a.mailer != nil {
		wg.Go(func() { a.mailer.Run(bg) })
	}

	var admin *http.Server
	if !cfg.Admin.Disabled {
		admin = newHTTPServer(cfg, a.adminHandler(), adminTLS, a.log)
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			stopBG()
			wg.Wait()
			return fmt.Errorf("admin listen %s: %w", cfg.Admin.Listen, err)
		}
		a.log.Info("admin listening", "addr", aln.Addr().String())
		fmt.Fprintf(e.stdout, "admin https://%s\n", aln.Addr())
		wg.Go(func() {
			if err := admin.Serve(tls.NewListener(aln, adminTLS)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("admin listener", "error", err.Error())
			}
		})
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tlsLn) }()
	select {
	case err = <-errc:
		if admin != nil {
			admin.Close()
		}
		if plain != nil {
			plain.Close()
		}
	case <-ctx.Done():
		a.log.Info("shutting down", "grace", cfg.Server.ShutdownTimeout.D().String())
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
		if admin != nil {
			_ = admin.Shutdown(sctx)
		}
		if plain != nil {
			_ = plain.Shutdown(sctx)
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

// readOpenAPI reads each upstream's OpenAPI document (bounded: 8 MiB).
func readOpenAPI(cfg *config.Config) (map[string][]byte, error) {
	docs := map[string][]byte{}
	for name, u := range cfg.Upstreams {
		if u.OpenAPI == "" {
			continue
		}
		f, err := os.Open(u.OpenAPI)
		if err != nil {
			return nil, fmt.Errorf("upstreams.%s.openapi: %w", name, err)
		}
		b, err := io.ReadAll(io.LimitReader(f, 8<<20+1))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("upstreams.%s.openapi: %w", name, err)
		}
		if len(b) > 8<<20 {
			return nil, fmt.Errorf("upstreams.%s.openapi: larger than 8 MiB", name)
		}
		docs[name] = b
	}
	return docs, nil
}

func newHTTPServer(cfg *config.Config, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		// Handshake failures (scanners, old clients) are routine on a public
		// listener: debug level, not stderr noise.
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		ReadTimeout:       cfg.Server.ReadTimeout.D(),
		WriteTimeout:      cfg.Server.WriteTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
	}
}

// publishedKeys is the key ring the public handler publishes: the JWKS and, when a
// backup key is configured, the signed pin set. Without a backup key no pin set
// is published: an app that pinned the serving key alone would be locked out the
// day it changes.
func publishedKeys(a *app, tr *transport) httpapi.KeySet {
	if tr.backupPin == "" {
		return a.ring
	}
	return keysWithPins{a.ring, &pinPublisher{cfg: a.cfg, ring: a.ring, t: tr, now: a.now}}
}

// newPlainHTTPServer is the optional plain-HTTP listener: redirects for
// browsers, a 403 problem for everything else, ACME HTTP-01 challenges. It never
// sees the main handler. Its limits are tighter than the HTTPS listener's because
// it has nothing to receive.
func newPlainHTTPServer(cfg *config.Config, tr *transport) *http.Server {
	opts := tlsutil.PlainHTTPOptions{Hosts: pinHosts(cfg)}
	if u, err := url.Parse(cfg.Issuer); err == nil {
		opts.HTTPSPort = u.Port()
	}
	if tr.acme != nil {
		opts.Challenge = tr.acme.HandleHTTPChallenge
	}
	return &http.Server{
		Handler:           tlsutil.PlainHTTPHandler(opts),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// upstreamTLSConfigs builds the client TLS configuration of every upstream that
// sets upstreams.<name>.tls.
func upstreamTLSConfigs(cfg *config.Config, log *slog.Logger) (map[string]*tls.Config, error) {
	out := map[string]*tls.Config{}
	for name, u := range cfg.Upstreams {
		if !u.TLS.Set() {
			continue
		}
		c, err := tlsutil.ClientConfig(tlsutil.ClientOptions{CAFile: u.TLS.CAFile, CertFile: u.TLS.CertFile, KeyFile: u.TLS.KeyFile, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("upstreams.%s.tls: %w", name, err)
		}
		out[name] = c
	}
	return out, nil
}

// registerTLSMetrics adds the certificate expiry and pin-mismatch gauges to the
// admin metrics.
func registerTLSMetrics(a *app, tr *transport, pins *pinMonitor) error {
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_certificate_expiry_seconds",
		Help: "Seconds until the served TLS certificate expires (negative once expired; 0 before one is obtained).",
	}, func() float64 { return tlsutil.Expiry(tr.source.Leaf(), a.now()).Seconds() })
	unpinned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_tls_serving_key_unpinned",
		Help: "1 when the serving TLS key's pin is neither in server.tls.pins.published nor the backup key's.",
	}, func() float64 {
		if bad, _ := pins.unpinned(); bad {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{expiry, unpinned} {
		if err := a.metrics.Registry().Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

// purgeLoop deletes dead sessions, old events and expired one-time codes
// hourly. Revoked sessions are kept until they would have expired anyway, so
// the record stays for audits; codes are kept a day past expiry so a replayed
// code is still recognised as used rather than unknown.
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
		if n, err := a.db.PurgeCodes(ctx, now.Add(-24*time.Hour)); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("purge expired codes", "error", err.Error())
			}
		} else if n > 0 {
			a.log.Info("purged expired one-time codes", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
