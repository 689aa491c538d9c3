package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const usersUsage = `Usage: gatehouse users SUBCOMMAND --config FILE [flags]

  create           --email E [--roles a,b] [--plan P] [--password-stdin]
                   (without --password-stdin a strong password is generated and printed once)
  list             [--after ID] [--limit N]
  lock             --email E | --id ID   (also signs the user out everywhere)
  unlock           --email E | --id ID
  grant            --email E | --id ID [--roles a,b] [--plan P]   (signs the user out so tokens carry the change)
  revoke-sessions  --email E | --id ID`

func cmdUsers(ctx context.Context, e env, args []string) error {
	sub, rest, err := subcommand(args, "create", "list", "lock", "unlock", "grant", "revoke-sessions")
	if err != nil {
		return err
	}
	if sub == "help" {
		fmt.Fprintln(e.stdout, usersUsage)
		return nil
	}
	fs := newFlags(e, "users "+sub, "users "+sub+" --config FILE [flags]")
	path := fs.String("config", "", "config file (YAML)")
	var email, id, roles, plan, after *string
	var pwStdin *bool
	var limit *int
	switch sub {
	case "create":
		email = fs.String("email", "", "email address")
		roles = fs.String("roles", "", "comma-separated roles")
		plan = fs.String("plan", "", "plan (default: identity.default_plan)")
		pwStdin = fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	case "list":
		after = fs.String("after", "", "list users whose id sorts after this one (paging)")
		limit = fs.Int("limit", 100, "at most this many users (1-1000)")
	default:
		email = fs.String("email", "", "the user's email address")
		id = fs.String("id", "", "the user's id")
		if sub == "grant" {
			roles = fs.String("roles", "", "comma-separated roles, replacing the current ones (\"-\" for none)")
			plan = fs.String("plan", "", "plan")
		}
	}
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
	m := identity.Meta{RequestID: "cli"}

	switch sub {
	case "create":
		return usersCreate(ctx, e, a, *email, *roles, *plan, *pwStdin)
	case "list":
		if *limit < 1 || *limit > 1000 {
			return usageError("users list: --limit must be between 1 and 1000")
		}
		return usersList(ctx, e, a, *after, *limit)
	}
	u, err := findUser(ctx, a, fs, *email, *id)
	if err != nil {
		return err
	}
	switch sub {
	case "lock":
		err = a.accounts.Lock(ctx, u.ID, m)
	case "unlock":
		err = a.accounts.Unlock(ctx, u.ID, m)
	case "grant":
		if *roles == "" && *plan == "" {
			return usageError("users grant: give --roles, --plan or both")
		}
		var rs []string
		if *roles != "" {
			rs = splitList(*roles)
		}
		if *plan != "" && len(cfg.Plans) > 0 {
			if _, ok := cfg.Plans[*plan]; !ok {
				return usageError("users grant: --plan %q is not in the config's plans", *plan)
			}
		}
		err = a.accounts.Grant(ctx, u.ID, rs, *plan, m)
	case "revoke-sessions":
		var ids []string
		ids, err = a.accounts.RevokeSessions(ctx, u.ID, "", "admin", m)
		if err == nil {
			fmt.Fprintf(e.stdout, "revoked %d session(s)\n", len(ids))
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok (%s)\n", sub, u.ID)
	return nil
}

func findUser(ctx context.Context, a *app, fs *flag.FlagSet, email, id string) (*store.User, error) {
	if (email == "") == (id == "") {
		return nil, usageError("%s: give exactly one of --email or --id", fs.Name())
	}
	var u *store.User
	var err error
	if id != "" {
		u, err = a.accounts.User(ctx, id)
	} else {
		u, err = a.accounts.UserByEmail(ctx, email)
	}
	if errors.Is(err, identity.ErrNotFound) {
		return nil, &exitError{code: 1, msg: "no such user"}
	}
	if errors.Is(err, identity.ErrInvalidEmail) {
		return nil, usageError("%s: --email is not a valid email address", fs.Name())
	}
	return u, err
}

func usersCreate(ctx context.Context, e env, a *app, email, roles, plan string, pwStdin bool) error {
	if email == "" {
		return usageError("users create: --email is required")
	}
	if plan != "" && len(a.cfg.Plans) > 0 {
		if _, ok := a.cfg.Plans[plan]; !ok {
			return usageError("users create: --plan %q is not in the config's plans", plan)
		}
	}
	pw, generated := "", false
	if pwStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return usageError("users create: --password-stdin: no password on standard input")
		}
		pw = strings.TrimRight(line, "\r\n")
	} else {
		pw, generated = generatePassword(), true
	}
	var rs []string
	if roles != "" {
		rs = splitList(roles)
	}
	u, err := a.accounts.Create(ctx, email, pw, rs, plan, identity.Meta{RequestID: "cli"})
	if err != nil {
		return userError(err)
	}
	fmt.Fprintf(e.stdout, "created user %s\n", u.ID)
	if generated {
		fmt.Fprintf(e.stdout, "password: %s\n(shown once; store it in a password manager)\n", pw)
	}
	return nil
}

func userError(err error) error {
	var pe *password.PolicyError
	switch {
	case errors.Is(err, identity.ErrEmailTaken):
		return &exitError{code: 1, msg: "an account with this email already exists"}
	case errors.Is(err, identity.ErrInvalidEmail):
		return usageError("--email is not a valid email address")
	case errors.As(err, &pe):
		return &exitError{code: 1, msg: err.Error()}
	}
	return err
}

func usersList(ctx context.Context, e env, a *app, after string, limit int) error {
	users, err := a.accounts.List(ctx, after, limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tROLES\tPLAN\tVERIFIED\tLOCKED\tCREATED")
	for i := range users {
		u := &users[i]
		email, err := a.accounts.Email(u)
		if err != nil {
			email = "(sealed: does not open)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%t\t%s\n", u.ID, email, strings.Join(u.Roles, ","), u.Plan, u.EmailVerified, u.LockedAt != nil, u.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func splitList(s string) []string {
	out := []string{}
	if s == "-" {
		return out
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// generatePassword returns 20 characters from a 56-symbol alphabet (~116 bits)
// without look-alike characters.
func generatePassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		b[i] = alphabet[randIntn(len(alphabet))]
	}
	return string(b)
}

func randIntn(n int) int {
	// rejection sampling: no modulo bias
	var one [1]byte
	limit := 256 - 256%n
	for {
		_, _ = rand.Read(one[:])
		if int(one[0]) < limit {
			return int(one[0]) % n
		}
	}
}
