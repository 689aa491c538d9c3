package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/alert"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/ban"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/mailer"
	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/monitor"
	"github.com/gatehouse-dev/gatehouse/internal/passkey"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit/redisstore"
	"github.com/gatehouse-dev/gatehouse/internal/revoke"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/redis/go-redis/v9"
)

// app is every long-lived dependency, wired from one config. cmd is the only
// place that knows how the parts fit together.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *store.DB
	kek      keys.Wrapper
	sealer   *envelope.Keyring // seals at rest under DEKs wrapped by kek
	ring     *keys.Ring
	audit    *audit.Recorder
	accounts *identity.Service
	passkeys *passkey.Service // nil: passkeys off
	mfa      *mfa.Service
	families *token.Families
	access   *token.Access
	now      func() time.Time
	getenv   func(string) string // for services' secret_env

	// The edge: built by openApp for every command, used by serve.
	redis       redis.UniversalClient // nil unless cache is redis://
	redisLimits *redisstore.Store
	revoked     *revoke.List
	cache       *token.Cache
	limiter     *ratelimit.Limiter
	memLimit    *ratelimit.Memory
	metrics     *monitor.Metrics
	policy      *policy.Env

	// Monitoring (monitor.go): bans for every command, the rest built by serve.
	bans          *ban.List
	mon           atomic.Pointer[monitor.Monitor]
	alerts        *alert.Dispatcher
	adminSessions *adminapi.Sessions
	// factors is the MFA service as dashboard sign-in sees it; nil: no MFA.
	factors  dashboardFactors
	certLeaf func() *x509.Certificate // the served certificate, set by serve

	// Email verification and password reset (email.go); nil without smtp.
	mailer *mailer.Mailer
	email  *identity.EmailFlows
}

type appOptions struct {
	skipMigrate bool
	now         func() time.Time
	// progressiveDelay overrides the sign-in delay step (tests use a tiny one).
	progressiveDelay time.Duration
}

// loadConfig reads and validates the config file — including compiling every
// route's CEL rules — turning problems into one message that names each field
// and line.
func loadConfig(path string, getenv func(string) string) (*config.Config, error) {
	if path == "" {
		return nil, usageError("--config FILE is required")
	}
	env, err := policy.NewEnv(policy.Options{})
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadWith(path, getenv, policy.Check(env))
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
	limiterNow := o.now
	if o.now == nil {
		o.now = time.Now
		// time.Now costs 100-250 ns on these VMs, as much as a whole limiter
		// decision; a 1 ms coarse clock is exact enough for rate limits.
		limiterNow = ratelimit.NewCoarseClock(ctx, time.Millisecond, nil).Now
	}
	kek, err := keys.OpenKEK(ctx, cfg.KEK, getenv)
	if err != nil {
		return nil, fmt.Errorf("kek: %w", err)
	}
	db, err := store.Open(ctx, cfg.Store, store.Options{SkipMigrate: o.skipMigrate, Logger: log})
	if err != nil {
		kek.Close()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
			kek.Close()
		}
	}()
	// Fails closed: a KEK that does not unwrap every stored data key stops
	// start-up here, naming the key and both KEK ids.
	sealer, err := envelope.New(ctx, db, kek, envelope.Options{
		IndexPurposes: append(envelope.IndexPurposes(), tlsutil.TicketKeyPurpose),
		Now:           o.now,
		Logger:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("kek: %w", err)
	}
	// From here on the store seals sessions' and events' personal data.
	db = db.WithFieldSealer(sealer)
	a := &app{cfg: cfg, log: log, db: db, kek: kek, sealer: sealer, now: o.now, getenv: getenv}
	var sink audit.Sink
	if *cfg.Audit.Store {
		sink = db
	}
	var auditLog *slog.Logger
	if *cfg.Audit.Log {
		auditLog = log
	}
	a.audit = audit.New(audit.Options{Logger: auditLog, Sink: sink, Now: o.now, Publish: a.publishEvent})

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
	pwPolicy := password.DefaultPolicy()
	pwPolicy.MinLength, pwPolicy.MaxLength, pwPolicy.Blocklist = pw.MinLength, pw.MaxLength, *pw.Blocklist
	delay := 250 * time.Millisecond
	if o.progressiveDelay != 0 {
		delay = o.progressiveDelay
	}
	if err := a.openEdge(limiterNow); err != nil {
		return nil, err
	}
	a.accounts = identity.New(db, db, hasher, pwPolicy, a.sealer, a.audit, identity.Options{
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
		Revocations:      a.revoked,
	})
	if err := a.openPasskeys(); err != nil {
		return nil, err
	}
	mc := cfg.Identity.MFA
	a.mfa = mfa.New(db, db, a.sealer, a.audit, mfa.Options{
		Issuer: mc.TOTPIssuer, TokenTTL: mc.TokenTTL.D(), MaxAttempts: mc.MaxAttempts,
		UserFailures: mc.UserFailures, Window: mc.Window.D(), Passkeys: db, Now: o.now, Logger: log,
	})
	a.factors = a.mfa
	if err := a.openEmail(getenv); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// openEdge builds what the edge shares between replicas: the rate-limit store
// (memory, or Redis for a cluster), the revoked-session list and the
// verified-token cache.
func (a *app) openEdge(limiterNow func() time.Time) error {
	cfg := a.cfg
	var externals []*token.External
	for _, x := range cfg.Tokens.ExternalIssuers {
		ext, err := token.NewExternal(token.ExternalOptions{Issuer: x.Issuer, JWKSURL: x.JWKSURL, Audience: x.Audience, MinRefresh: x.MinRefresh.D(), Now: a.now})
		if err != nil {
			return err
		}
		externals = append(externals, ext)
	}
	a.cache = token.NewCache(token.NewIssuers(cfg.Issuer, a.access, externals...), token.CacheOptions{Now: a.now})
	a.metrics = monitor.NewMetrics(a.cache)
	a.memLimit = ratelimit.NewMemory(ratelimit.MemoryOptions{Now: limiterNow})
	var primary ratelimit.Store = a.memLimit
	if strings.HasPrefix(cfg.Cache, "redis://") || strings.HasPrefix(cfg.Cache, "rediss://") {
		opt, err := redis.ParseURL(cfg.Cache)
		if err != nil {
			return fmt.Errorf("cache: not a valid Redis URL")
		}
		// Fail fast: a stalled Redis must hand over to the failure policy in
		// tens of milliseconds, not hold every request.
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 500*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
		opt.PoolSize = 64
		// No retries: the failure policy, not a retry loop, answers a Redis
		// outage (go-redis's defaults wait ~1.7 s per command before failing).
		opt.MaxRetries, opt.DialerRetries = -1, 1
		a.redis = redis.NewClient(opt)
		// Concurrent decisions share round trips (pipelines), each still one
		// atomic script on the server.
		rs, err := redisstore.New(a.redis, redisstore.Options{Pipeline: 4})
		if err != nil {
			return err
		}
		a.redisLimits = rs
		primary = rs
	}
	var err error
	a.limiter, err = ratelimit.New(primary, ratelimit.Options{
		OnStoreError: cfg.Limits.OnStoreError,
		Fallback:     a.memLimit,
		Logger:       a.log,
		OnError:      func(policy string, _ error) { a.metrics.StoreError("ratelimit", policy) },
		Now:          a.now,
	})
	if err != nil {
		return err
	}
	a.bans = ban.New(ban.Options{Store: a.db, Redis: a.redis, Now: a.now, Logger: a.log})
	a.revoked = revoke.New(revoke.Options{
		// Listed as long as any access token of the session could be valid.
		TTL:    cfg.Tokens.AccessTTL.D() + 2*time.Minute,
		Source: a.db,
		Redis:  a.redis,
		Now:    a.now,
		Logger: a.log,
	})
	a.policy, err = policy.NewEnv(policy.Options{})
	return err
}

func (a *app) Close() error {
	if a.redisLimits != nil {
		a.redisLimits.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	err := a.db.Close()
	a.kek.Close()
	return err
}

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
