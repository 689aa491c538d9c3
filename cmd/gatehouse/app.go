package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// app is every long-lived dependency, wired from one config. cmd is the only
// place that knows how the parts fit together.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *store.DB
	sealer   *keys.Sealer
	ring     *keys.Ring
	audit    *audit.Recorder
	accounts *identity.Service
	families *token.Families
	access   *token.Access
	now      func() time.Time
}

type appOptions struct {
	skipMigrate bool
	now         func() time.Time
	// progressiveDelay overrides the sign-in delay step (tests use a tiny one).
	progressiveDelay time.Duration
}

// loadConfig reads and validates the config file, turning problems into one
// message that names each field and line.
func loadConfig(path string, getenv func(string) string) (*config.Config, error) {
	if path == "" {
		return nil, usageError("--config FILE is required")
	}
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	return cfg, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	lvl := slog.LevelInfo
	switch strings.ToLower(cfg.Log.Level) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

// openApp opens the store, the KEK and the key ring. It fails closed: a KEK that
// does not open the stored keys stops start-up with a clear message.
func openApp(ctx context.Context, cfg *config.Config, log *slog.Logger, getenv func(string) string, o appOptions) (*app, error) {
	if o.now == nil {
		o.now = time.Now
	}
	kek, err := keys.LoadKEK(cfg.KEK, getenv)
	if err != nil {
		return nil, fmt.Errorf("kek: %w", err)
	}
	db, err := store.Open(ctx, cfg.Store, store.Options{SkipMigrate: o.skipMigrate, Logger: log})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, db: db, sealer: keys.NewSealer(kek), now: o.now}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	var sink audit.Sink
	if *cfg.Audit.Store {
		sink = db
	}
	var auditLog *slog.Logger
	if *cfg.Audit.Log {
		auditLog = log
	}
	a.audit = audit.New(audit.Options{Logger: auditLog, Sink: sink, Now: o.now})

	maxLife := cfg.Tokens.AccessTTL.D()
	a.ring, err = keys.NewRing(ctx, db, a.sealer, keys.RingOptions{
		Algorithm:        cfg.Tokens.Algorithm,
		RotationInterval: cfg.Keys.RotationInterval.D(),
		RetireAfter:      maxLife + cfg.Keys.JWKSCacheTTL.D(),
		ReloadInterval:   cfg.Keys.ReloadInterval.D(),
		Now:              o.now,
		Logger:           log,
		OnRotate: func(ctx context.Context, r keys.RotateResult) {
			a.audit.Record(ctx, store.Event{Type: audit.KeyRotated, Detail: map[string]string{
				"activated": r.Activated, "retiring": r.Retiring, "next": r.Next, "retired": strings.Join(r.Retired, ","),
			}})
		},
	})
	if err != nil {
		return nil, err
	}
	a.access, err = token.NewAccess(a.ring, a.ring, token.AccessOptions{
		Issuer: cfg.Issuer, Audience: cfg.Tokens.Audience, TTL: cfg.Tokens.AccessTTL.D(), Now: o.now,
	})
	if err != nil {
		return nil, err
	}
	leeway := cfg.Tokens.ReuseLeeway.D()
	if leeway == 0 {
		leeway = -1 // config 0 means "no leeway"; FamilyOptions 0 means default
	}
	a.families = token.NewFamilies(db, a.sealer, token.FamilyOptions{
		IdleTTL: cfg.Tokens.RefreshIdleTTL.D(), AbsoluteTTL: cfg.Tokens.RefreshAbsoluteTTL.D(),
		Leeway: leeway, Now: o.now, Logger: log,
	})
	pw := cfg.Identity.Password
	hasher, err := password.NewHasher(password.Params{MemoryKiB: pw.Argon2.MemoryKiB, Iterations: pw.Argon2.Iterations, Parallelism: pw.Argon2.Parallelism},
		password.HasherOptions{MaxConcurrent: pw.MaxConcurrentHashes, QueueTimeout: pw.HashQueueTimeout.D()})
	if err != nil {
		return nil, err
	}
	policy := password.DefaultPolicy()
	policy.MinLength, policy.MaxLength, policy.Blocklist = pw.MinLength, pw.MaxLength, *pw.Blocklist
	delay := 250 * time.Millisecond
	if o.progressiveDelay != 0 {
		delay = o.progressiveDelay
	}
	a.accounts = identity.New(db, db, hasher, policy, a.sealer, a.audit, identity.Options{
		DefaultPlan:      cfg.Identity.DefaultPlan,
		DefaultRoles:     cfg.Identity.DefaultRoles,
		SignupDisabled:   cfg.Identity.SignupDisabled,
		AccountFailures:  cfg.Identity.Lockout.AccountFailures,
		IPFailures:       cfg.Identity.Lockout.IPFailures,
		Window:           cfg.Identity.Lockout.Window.D(),
		ProgressiveDelay: delay,
		MaxAccessTTL:     maxLife,
		Now:              o.now,
		Logger:           log,
	})
	ok = true
	return a, nil
}

func (a *app) Close() error { return a.db.Close() }

// ready is the readiness check: the store answers and a signing key is loaded.
func (a *app) ready(ctx context.Context) error {
	if err := a.db.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if len(a.ring.JWKS()) == 0 {
		return errors.New("keys: none loaded")
	}
	return nil
}
