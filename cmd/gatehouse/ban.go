package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/adminapi"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/ban"
	"github.com/gatehouse-dev/gatehouse/internal/monitor"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const bansUsage = `Usage: gatehouse bans SUBCOMMAND --config FILE [flags]

  list     bans in force
  create   --ip ADDR | --user ID | --session ID  [--for 1h] [--reason TEXT]
  delete   --id BAN_ID   (lifts the ban at every replica)`

func cmdBans(ctx context.Context, e env, args []string) error {
	sub, rest, err := subcommand(args, "list", "create", "delete")
	if err != nil {
		return err
	}
	if sub == "help" {
		fmt.Fprintln(e.stdout, bansUsage)
		return nil
	}
	fs := newFlags(e, "bans "+sub, "bans "+sub+" --config FILE [flags]")
	path := fs.String("config", "", "config file (YAML)")
	var ip, user, session, dur, reason, id *string
	switch sub {
	case "create":
		ip = fs.String("ip", "", "ban this client address")
		user = fs.String("user", "", "ban this user id")
		session = fs.String("session", "", "ban this session id")
		dur = fs.String("for", "1h", "how long (e.g. 15m, 2h, 3d; at most 30d)")
		reason = fs.String("reason", "", "why (shown to operators)")
	case "delete":
		id = fs.String("id", "", "the ban's id (see bans list)")
	}
	if err := parseFlags(e, fs, rest); err != nil {
		return helpOK(err)
	}
	var b store.Ban
	var banFor time.Duration
	switch sub {
	case "create":
		n := 0
		for _, x := range []struct{ kind, v string }{{store.BanIP, *ip}, {store.BanUser, *user}, {store.BanSession, *session}} {
			if x.v != "" {
				n++
				b.Kind, b.Value = x.kind, x.v
			}
		}
		if n != 1 {
			return usageError("bans create: give exactly one of --ip, --user, --session")
		}
		d, err := adminapi.ParseDuration(*dur)
		if err != nil || d <= 0 || d > ban.MaxDuration {
			return usageError("bans create: --for must be a duration from 1s to 30d (e.g. 15m, 2h, 3d)")
		}
		if _, err := ban.Normalize(b.Kind, b.Value); err != nil {
			return usageError("bans create: %v", err)
		}
		b.Reason, b.Source, banFor = *reason, "cli", d
	case "delete":
		if *id == "" {
			return usageError("bans delete: --id is required")
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

	switch sub {
	case "list":
		bans, err := a.db.ActiveBans(ctx, a.now(), 0)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tVALUE\tEXPIRES\tSOURCE\tREASON")
		for _, x := range bans {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Kind, x.Value, x.ExpiresAt.UTC().Format(time.RFC3339), x.Source, x.Reason)
		}
		return tw.Flush()
	case "create":
		now := a.now().UTC()
		b.CreatedAt, b.ExpiresAt = now, now.Add(banFor)
		made, err := a.bans.Add(ctx, b)
		if err != nil {
			return err
		}
		a.audit.Record(ctx, monitor.BanEvent(audit.BanCreated, made, "cli"))
		fmt.Fprintf(e.stdout, "banned %s %s until %s (id %s)\n", made.Kind, made.Value, made.ExpiresAt.UTC().Format(time.RFC3339), made.ID)
		return nil
	default:
		lifted, err := a.bans.Lift(ctx, *id)
		if errors.Is(err, ban.ErrNotFound) {
			return &exitError{code: 1, msg: fmt.Sprintf("bans delete: no ban in force with id %q", *id)}
		}
		if err != nil {
			return err
		}
		a.audit.Record(ctx, monitor.BanEvent(audit.BanLifted, lifted, "cli"))
		fmt.Fprintf(e.stdout, "lifted ban %s (%s %s)\n", lifted.ID, lifted.Kind, lifted.Value)
		return nil
	}
}
