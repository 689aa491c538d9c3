package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Environment variables that override the file. Secrets belong in the
// environment (or a secret manager behind it), not in a YAML file that ends up in
// version control.
const (
	EnvStore  = "GATEHOUSE_STORE"
	EnvCache  = "GATEHOUSE_CACHE"
	EnvKEK    = "GATEHOUSE_KEK"
	EnvIssuer = "GATEHOUSE_ISSUER"
)

// envOverrides lists each override and the field it sets.
var envOverrides = []struct {
	env, path string
	set       func(*Config, string)
}{
	{EnvIssuer, "issuer", func(c *Config, v string) { c.Issuer = v }},
	{EnvStore, "store", func(c *Config, v string) { c.Store = v }},
	{EnvCache, "cache", func(c *Config, v string) { c.Cache = v }},
	{EnvKEK, "kek", func(c *Config, v string) { c.KEK = v }},
}

// Load reads the configuration file at path and returns it decoded, overridden
// from the environment and validated. See ParseWith for the steps. Anything wrong
// with the content, including a file over MaxFileBytes, is reported as Problems;
// a file that cannot be opened or read is a wrapped I/O error (errors.Is works
// with fs.ErrNotExist). getenv is the only source of environment values; nil
// means none.
func Load(path string, getenv func(string) string) (*Config, error) {
	return LoadWith(path, getenv)
}

// LoadWith is Load with extra checks run after Validate; their problems get YAML
// lines like Validate's own.
func LoadWith(path string, getenv func(string) string, checks ...Check) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: open: %w", err)
	}
	defer f.Close()
	// Read one byte more than allowed to tell "exactly the limit" from "over it"
	// without ever holding more than that in memory.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return ParseWith(data, path, getenv, checks...)
}

// Parse is Load for a configuration already in memory; name is the file name used
// in problem messages.
func Parse(data []byte, name string, getenv func(string) string) (*Config, error) {
	return ParseWith(data, name, getenv)
}

// ParseWith decodes data and returns the configuration, or Problems listing
// everything wrong with it:
//
//  1. start from Default();
//  2. decode strictly: unknown keys, duplicate keys, wrong types and bad
//     durations are problems (all of them, not just the first);
//  3. apply the environment overrides (GATEHOUSE_ISSUER, _STORE, _CACHE, _KEK);
//  4. ApplyDefaults for zero values that mean "the default";
//  5. Validate, then each check.
//
// Every problem carries its YAML path and line; problems about a value that came
// from the environment have line 0 and name the variable.
func ParseWith(data []byte, name string, getenv func(string) string, checks ...Check) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, Problems{{File: name, Message: fmt.Sprintf("file is larger than the %d-byte (1 MiB) limit", MaxFileBytes)}}
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// A syntax error: there is no tree to decode or validate.
		return nil, finish(name, []Problem{syntaxProblem(err)})
	}
	if len(doc.Content) > 0 {
		if root := doc.Content[0]; root.Kind != yaml.MappingNode && root.ShortTag() != "!!null" {
			// Nothing else can be checked in a file that is not a mapping.
			return nil, finish(name, []Problem{{Line: root.Line, Message: "the file must be a mapping of settings (got " + nodeKind(root) + ")"}})
		}
	}
	ix := buildIndex(&doc)
	if ps := ix.blockingProblems(); len(ps) > 0 {
		return nil, finish(name, ps)
	}

	cfg := Default()
	ps := ix.problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&cfg)
	var te *yaml.TypeError
	var skipped []string
	switch {
	case err == nil, errors.Is(err, io.EOF): // io.EOF: an empty file
	case errors.As(err, &te):
		var tps []Problem
		tps, skipped = ix.typeErrorProblems(te.Errors)
		ps = append(ps, tps...)
	default:
		return nil, finish(name, []Problem{syntaxProblem(err)})
	}
	if err == nil {
		// A second document ("---") would be silently ignored: refuse it.
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			line := extra.Line
			if err != nil {
				line = syntaxProblem(err).Line
			}
			ps = append(ps, Problem{Line: line, Message: "the file must hold one YAML document (found a second after \"---\")"})
		}
	}

	fromEnv := map[string]string{}
	if getenv != nil {
		for _, o := range envOverrides {
			if v := getenv(o.env); v != "" {
				o.set(&cfg, v)
				fromEnv[o.path] = o.env
			}
		}
	}
	cfg.ApplyDefaults()

	// A value that failed to decode kept its default; validating it again would
	// report the same key twice, so validation problems under a path that
	// already has a decode problem are dropped. yaml.v3 skips a whole mapping
	// that has a duplicate key, so that mapping's path is dropped (the root: all
	// validation, since nothing was decoded).
	bad := map[string]bool{}
	for _, p := range ps {
		if p.Path != "" {
			bad[p.Path] = true
		}
	}
	for _, p := range skipped {
		bad[p] = true
	}
	for _, p := range cfg.ValidateWith(checks...) {
		if underAny(p.Path, bad) {
			continue
		}
		if env, ok := fromEnv[rootKey(p.Path)]; ok {
			p.Message += " (value from " + env + ")"
		} else {
			p.Line = ix.line(p.Path)
		}
		ps = append(ps, p)
	}
	if len(ps) > 0 {
		return nil, finish(name, ps)
	}
	return &cfg, nil
}

// maxProblems bounds the list returned for one file: a hostile or badly broken
// file could otherwise produce hundreds of thousands of lines.
const maxProblems = 100

// finish sets the file name, orders problems by line (whole-file and line-less
// problems first, the order of discovery kept within a line) and cuts the list
// at maxProblems.
func finish(name string, ps []Problem) Problems {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	if len(ps) > maxProblems {
		ps = append(ps[:maxProblems:maxProblems], Problem{Message: "more problems not shown; fix these first"})
	}
	for i := range ps {
		ps[i].File = name
	}
	return Problems(ps)
}

// syntaxProblem turns a yaml syntax error ("yaml: line 3: did not find expected
// key") into a Problem with its line.
func syntaxProblem(err error) Problem {
	msg := err.Error()
	if m := reLine.FindStringSubmatch(msg); m != nil {
		line := 0
		fmt.Sscan(m[1], &line)
		return Problem{Line: line, Message: "invalid YAML: " + m[2]}
	}
	if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	return Problem{Message: "invalid YAML: " + msg}
}

// underAny reports whether path or one of its ancestors is in set; "" in set
// stands for the root, above every path.
func underAny(path string, set map[string]bool) bool {
	if set[""] {
		return true
	}
	for p := path; p != ""; p = parentPath(p) {
		if set[p] {
			return true
		}
	}
	return false
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

// rootKey returns the first element of a path: "tokens.access_ttl" → "tokens".
func rootKey(path string) string {
	for p := path; ; {
		up := parentPath(p)
		if up == "" {
			return p
		}
		p = up
	}
}
