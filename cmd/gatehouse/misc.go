package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func cmdVersion(_ context.Context, e env, args []string) error {
	fs := newFlags(e, "version", "version")
	if err := parseFlags(e, fs, args); err != nil {
		return helpOK(err)
	}
	version, commit := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Fprintf(e.stdout, "gatehouse %s\ncommit %s\n%s %s/%s\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func cmdConfig(_ context.Context, e env, args []string) error {
	sub, rest, err := subcommand(args, "check")
	if err != nil {
		return err
	}
	if sub == "help" {
		fmt.Fprintln(e.stdout, "Usage: gatehouse config check --config FILE")
		return nil
	}
	fs := newFlags(e, "config check", "config check --config FILE")
	path := fs.String("config", "", "config file (YAML)")
	if err := parseFlags(e, fs, rest); err != nil {
		return helpOK(err)
	}
	if *path == "" {
		return usageError("config check: --config FILE is required")
	}
	env, err := policy.NewEnv(policy.Options{})
	if err != nil {
		return err
	}
	if _, err := config.LoadWith(*path, e.getenv, policy.Check(env)); err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(e.stdout, p.String())
			}
			return &exitError{code: 1, msg: fmt.Sprintf("%s: %d problem(s)", *path, len(ps))}
		}
		return &exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *path)
	return nil
}

func cmdMigrate(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "migrate", "migrate --config FILE")
	path := fs.String("config", "", "config file (YAML)")
	if err := parseFlags(e, fs, args); err != nil {
		return helpOK(err)
	}
	cfg, err := loadConfig(*path, e.getenv)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.Store, store.Options{SkipMigrate: true, Logger: newLogger(cfg, e.stderr)})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "migrations applied (%s)\n", db.Dialect())
	return nil
}

const keysUsage = `Usage: gatehouse keys list|rotate|check --config FILE [flags]

  list                  signing keys and data keys, with their states
  rotate                signing keys: next → active, active → retiring, expired retiring → retired; a new next key
  rotate --data         new data keys for every purpose; re-encrypt every sealed value under them in
                        batches (--batch N, default 500), online and resumable: run it again after a crash
  rotate --kek NEW_URL  re-wrap every data key under the KEK at NEW_URL (the old KEK is the config's);
                        then set kek: NEW_URL in the config and restart
  check                 open every sealed value; counts per purpose; exit 1 if any fails to open`

func cmdKeys(ctx context.Context, e env, args []string) error {
	sub, rest, err := subcommand(args, "list", "rotate", "check")
	if err != nil {
		return err
	}
	if sub == "help" {
		fmt.Fprintln(e.stdout, keysUsage)
		return nil
	}
	usage := "keys " + sub + " --config FILE"
	if sub == "rotate" {
		usage += " [--data [--batch N] | --kek NEW_URL]"
	}
	fs := newFlags(e, "keys "+sub, usage)
	path := fs.String("config", "", "config file (YAML)")
	var (
		data   *bool
		newKEK *string
		batch  *int
	)
	if sub == "rotate" {
		data = fs.Bool("data", false, "re-encrypt every sealed value under new data keys")
		newKEK = fs.String("kek", "", "re-wrap the data keys under the KEK at this URL")
		batch = fs.Int("batch", 500, "values re-encrypted per transaction (with --data)")
	}
	if err := parseFlags(e, fs, rest); err != nil {
		return helpOK(err)
	}
	if sub == "rotate" {
		switch {
		case *data && *newKEK != "":
			return usageError("keys rotate: use --data or --kek, not both")
		case *batch < 1 || *batch > 10000:
			return usageError("keys rotate: --batch must be between 1 and 10000")
		}
	}
	cfg, err := loadConfig(*path, e.getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, newLogger(cfg, e.stderr), e.getenv, appOptions{})
	if err != nil {
		return err
	}
	defer a.Close()
	switch {
	case sub == "check":
		return a.keysCheck(ctx, e)
	case sub == "rotate" && *data:
		return a.rotateData(ctx, e, envelope.ResealOptions{BatchSize: *batch})
	case sub == "rotate" && *newKEK != "":
		return a.rotateKEK(ctx, e, *newKEK)
	case sub == "rotate":
		r, err := a.ring.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "rotated: active %s, retiring %s, next %s", r.Activated, r.Retiring, r.Next)
		if len(r.Retired) > 0 {
			fmt.Fprintf(e.stdout, ", retired %v", r.Retired)
		}
		fmt.Fprintln(e.stdout)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tACTIVATED\tRETIRING\tRETIRED")
	for _, k := range a.ring.Keys() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, k.CreatedAt.UTC().Format(time.RFC3339), ts(k.ActivatedAt), ts(k.RetiringAt), ts(k.RetiredAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if sub == "list" {
		return a.listDataKeys(e)
	}
	return nil
}

// listDataKeys prints the data keys (never their material) and the KEK id.
func (a *app) listDataKeys(e env) error {
	fmt.Fprintf(e.stdout, "\ndata keys (wrapped by kek %s)\n", a.sealer.KEKID())
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEK\tKIND\tPURPOSE\tSTATE\tKEK\tCREATED\tRETIRED")
	for _, k := range a.sealer.Keys() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Kind, k.Purpose, k.State, k.KEKID, k.CreatedAt.UTC().Format(time.RFC3339), ts(k.RetiredAt))
	}
	return tw.Flush()
}

// keysCheck opens every sealed value and exits 1 if any does not open.
func (a *app) keysCheck(ctx context.Context, e env) error {
	rep, err := a.sealer.Check(ctx, a.db)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PURPOSE\tOPENED\tFAILED\tPRE-ENVELOPE\tRETIRED-DEK\tPLAINTEXT")
	for _, c := range rep.Purposes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", c.Purpose, c.Opened, c.Failed, c.Version1, c.Retired, c.Plaintext)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range rep.Failures {
		fmt.Fprintf(e.stdout, "FAILED %s row %s: %s\n", f.Field, f.RowID, f.Err)
	}
	if rep.Failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("keys check: %d sealed value(s) do not open under kek %s", rep.Failed, a.sealer.KEKID())}
	}
	fmt.Fprintf(e.stdout, "ok: every sealed value opens under kek %s\n", a.sealer.KEKID())
	return nil
}

// rotateData re-encrypts everything under new data keys (or resumes a run that
// was interrupted). opts.AfterBatch is the tests' hook; the command prints
// progress through it otherwise.
func (a *app) rotateData(ctx context.Context, e env, opts envelope.ResealOptions) error {
	if opts.AfterBatch == nil {
		opts.AfterBatch = func(field string, p store.ResealProgress) {
			if p.Done {
				fmt.Fprintf(e.stdout, "%s: %d re-encrypted\n", field, p.Resealed)
			}
		}
	}
	rep, err := a.sealer.Reseal(ctx, a.db, opts)
	if err != nil {
		return err
	}
	var total int64
	for _, n := range rep.Fields {
		total += n
	}
	how := "started"
	if rep.Resumed {
		how = "resumed"
	}
	a.audit.Record(ctx, store.Event{Type: audit.DataKeysRotated, Detail: map[string]string{
		"run": rep.RunID, "resealed": strconv.FormatInt(total, 10), "resumed": strconv.FormatBool(rep.Resumed)}})
	fmt.Fprintf(e.stdout, "data keys rotated (run %s, %s): %d values re-encrypted\n", rep.RunID, how, total)
	return nil
}

// rotateKEK re-wraps every data key under the KEK at newURL.
func (a *app) rotateKEK(ctx context.Context, e env, newURL string) error {
	next, err := keys.OpenKEK(ctx, newURL, e.getenv)
	if err != nil {
		return fmt.Errorf("new kek: %w", err)
	}
	defer next.Close()
	// Why refuse: version-1 values are sealed under keys derived from the old
	// KEK itself; after the switch nothing could open them. Re-encrypting them
	// under data keys first makes the KEK purely a wrapper of data keys.
	rep, err := a.sealer.Check(ctx, a.db)
	if err != nil {
		return err
	}
	var v1 int64
	for _, c := range rep.Purposes {
		v1 += c.Version1
	}
	switch {
	case rep.Failed > 0:
		return &exitError{code: 1, msg: fmt.Sprintf("keys rotate --kek: %d sealed value(s) do not open now; run gatehouse keys check and fix that first", rep.Failed)}
	case v1 > 0:
		return &exitError{code: 1, msg: fmt.Sprintf("keys rotate --kek: %d value(s) are still sealed in the pre-envelope format, which depends on the old kek itself; run gatehouse keys rotate --data first", v1)}
	}
	rw, err := a.sealer.Rewrap(ctx, next)
	if err != nil {
		return err
	}
	if err := a.db.RewrapDataKeys(ctx, rw); err != nil {
		return fmt.Errorf("keys rotate --kek: %w (nothing was changed)", err)
	}
	a.audit.Record(ctx, store.Event{Type: audit.KEKRotated, Detail: map[string]string{
		"old_kek": a.sealer.KEKID(), "new_kek": next.ID(), "data_keys": strconv.Itoa(len(rw))}})
	fmt.Fprintf(e.stdout, "%d data keys re-wrapped: kek %s → %s\n", len(rw), a.sealer.KEKID(), next.ID())
	fmt.Fprintln(e.stdout, "now set kek to the new URL in the config (or GATEHOUSE_KEK) and restart every replica;")
	fmt.Fprintln(e.stdout, "replicas still on the old kek refuse to start, and running ones keep working until restarted.")
	return nil
}

func ts(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
