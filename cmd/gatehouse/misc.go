package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
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

func cmdKeys(ctx context.Context, e env, args []string) error {
	sub, rest, err := subcommand(args, "list", "rotate")
	if err != nil {
		return err
	}
	if sub == "help" {
		fmt.Fprintln(e.stdout, "Usage: gatehouse keys list|rotate --config FILE\n\n  list    signing keys and their states\n  rotate  next → active, active → retiring, expired retiring → retired; a new next key")
		return nil
	}
	fs := newFlags(e, "keys "+sub, "keys "+sub+" --config FILE")
	path := fs.String("config", "", "config file (YAML)")
	if err := parseFlags(e, fs, rest); err != nil {
		return helpOK(err)
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
	if sub == "rotate" {
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
	return tw.Flush()
}

func ts(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
