package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// exitError ends the process with a code; msg, if set, is printed first.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// usageError is a command-line mistake: exit 2 with the message.
func usageError(format string, a ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, a...)}
}

// env is what every command receives.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the server (HTTPS listener and admin listener)", cmdServe},
		{"demo", "run a zero-config demo on embedded defaults", cmdDemo},
		{"config", "check a config file: config check --config FILE", cmdConfig},
		{"migrate", "apply database schema migrations", cmdMigrate},
		{"keys", "signing keys: keys list|rotate --config FILE", cmdKeys},
		{"users", "accounts: users create|list|lock|unlock|grant|revoke-sessions --config FILE", cmdUsers},
		{"bans", "temporary bans: bans list|create|delete --config FILE", cmdBans},
		{"pins", "print the TLS pin set for apps: pins --config FILE [--format json|android|ios|okhttp]", cmdPins},
		{"scan", "attack an API the way an attacker would and report: scan URL [flags]", cmdScan},
		{"version", "print version information", cmdVersion},
	}
}

// run is the whole program. It never calls os.Exit and reads the environment
// only through getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) < 2 {
		printUsage(stderr)
		return &exitError{code: 2}
	}
	name := args[1]
	if name == "-h" || name == "--help" || name == "help" {
		printUsage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, e, args[2:])
		}
	}
	printUsage(stderr)
	return usageError("unknown command %q", name)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Gatehouse: a security layer for the APIs behind mobile apps.")
	fmt.Fprintln(w, "\nUsage: gatehouse COMMAND [flags]   (gatehouse COMMAND --help for a command's flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

// newFlags returns a FlagSet that prints its usage to e.stdout on --help and
// reports errors without exiting.
func newFlags(e env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gatehouse %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; --help prints usage to stdout and returns errHelp.
func parseFlags(e env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return errHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return usageError("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageError("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// errHelp means --help was answered; the command returns nil.
var errHelp = errors.New("help shown")

func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// subcommand splits "keys list ..." style arguments.
func subcommand(args []string, known ...string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return "help", nil, nil
		}
		return "", nil, usageError("a subcommand is required: %s", strings.Join(known, ", "))
	}
	for _, k := range known {
		if args[0] == k {
			return k, args[1:], nil
		}
	}
	return "", nil, usageError("unknown subcommand %q (want one of %s)", args[0], strings.Join(known, ", "))
}
